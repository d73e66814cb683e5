package runner

import (
	"errors"
	"syscall"
)

// hostExecAttr puts a host command in a process group of its own (killed as one) and has the kernel kill
// its shell should slimoci die.
func hostExecAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills the process group pgid; one already gone is no error.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
