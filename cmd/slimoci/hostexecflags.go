package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slimoci/slimoci/internal/termsafe"
	"github.com/slimoci/slimoci/runner"
)

// HostExecFlags are mint's host commands (--host-exec, a client or test suite the user runs on the host
// against the observed app) and its exec file (a script run in the sandbox as an exec probe).
type HostExecFlags struct {
	HostExec        []string      `help:"Run a shell line on the host (/bin/sh -c) while the app runs, after the exec probes, as you, NOT sandboxed (your own test suite or a client, e.g. for a database): the app's ports are reachable on the host's loopback, each in SLIMOCI_PORT_<port> (127.0.0.1:41234) and the first in SLIMOCI_ADDR. A non-zero exit fails the observation as a failed probe (repeatable)." sep:"none" placeholder:"CMD"`
	HostExecFile    string        `help:"Host commands from a file, one shell line a line (blank lines and lines starting with # skipped), run after --host-exec's." type:"existingfile" placeholder:"FILE"`
	HostExecTimeout time.Duration `help:"How long each host command may run before its process group is killed (mint's 200s)." default:"200s"`
	ExecFile        string        `help:"A shell script run in the sandbox as one exec probe (/bin/sh -c with the file's content, as mint's sh -s), after the --exec commands." type:"existingfile" placeholder:"FILE"`
}

// maxExecFileBytes is the most --exec-file can hold: the script is one argument of /bin/sh -c, and Linux
// takes at most 32 pages (MAX_ARG_STRLEN) for one.
const maxExecFileBytes = 128<<10 - 1

// parseHostExec reads the host commands and the exec file into o's plan.
func (f *ObserveFlags) parseHostExec(o *observation) error {
	h := &f.HostExecFlags
	if h.HostExecTimeout <= 0 {
		return fmt.Errorf("--host-exec-timeout %s: want a positive duration", h.HostExecTimeout)
	}
	for _, line := range h.HostExec {
		if strings.TrimSpace(line) == "" {
			return fmt.Errorf("--host-exec: empty command")
		}
	}
	o.plan.HostExec = slices.Clone(h.HostExec)
	if h.HostExecFile != "" {
		lines, err := readHostExecFile(h.HostExecFile)
		if err != nil {
			return err
		}
		o.plan.HostExec = append(o.plan.HostExec, lines...)
	}
	o.plan.HostExecTimeout = h.HostExecTimeout
	if h.ExecFile != "" {
		script, err := readExecFile(h.ExecFile)
		if err != nil {
			return err
		}
		o.plan.Exec = append(o.plan.Exec, []string{"/bin/sh", "-c", script})
	}
	return nil
}

// readHostExecFile reads --host-exec-file: one command a line, trimmed; blank and # lines skipped (as the
// keep flags' files). A file with no command is an error (a mistake more likely than a wish).
func readHostExecFile(path string) ([]string, error) {
	lines, err := readLines("--host-exec-file", path)
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("--host-exec-file %s: no command in it", path)
	}
	var cmds []string
	for _, l := range lines {
		cmds = append(cmds, l.text)
	}
	return cmds, nil
}

// readExecFile reads --exec-file: a script for /bin/sh -c, so no NUL byte and at most one argument's size.
func readExecFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--exec-file: %w", err)
	}
	if fi.Size() > maxExecFileBytes {
		return "", fmt.Errorf("--exec-file %s: %d bytes, more than the %d one argument of /bin/sh -c may hold (put the script in the image or a --mount and --exec it)", path, fi.Size(), maxExecFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--exec-file: %w", err)
	}
	switch {
	case bytes.IndexByte(b, 0) >= 0:
		return "", fmt.Errorf("--exec-file %s: a NUL byte: not a shell script", path)
	case strings.TrimSpace(string(b)) == "":
		return "", fmt.Errorf("--exec-file %s: empty", path)
	}
	return string(b), nil
}

// hostExecSummary prints a line per host command (escaped: the command and its output are the user's, but
// the output may quote the app).
func hostExecSummary(w io.Writer, obs *runner.Observation) {
	for _, h := range obs.HostExecs {
		fmt.Fprintln(w, termsafe.String(h.String()))
	}
}
