package sensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The notify backend: the same filter as the ptrace one (traceFilter), returning SECCOMP_RET_USER_NOTIF
// instead of RET_TRACE. The app's syscall waits in the kernel while the sensor reads its arguments and
// answers SECCOMP_USER_NOTIF_FLAG_CONTINUE: no ptrace stop, no signal machinery, and with
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP the sensor and the app hand over on one CPU. Measured on this kind of
// machine (2 vCPUs, quiet): a traced stat costs 12 µs against ptrace's 15 µs with tracer and app on one CPU
// and 70 µs with the tracer pinned and the app free (the ptrace backend's set-up); a counted-only syscall
// (all mode) 5 µs against 13-75 µs.
//
// Forks, clones, execs and exits still come from ptrace (attached as in Trace, without
// PTRACE_O_TRACESECCOMP): the record's Execs are successful execs only (a notification comes at the execve's
// entry, before it can fail), with their parents, exactly as the ptrace backend has them. Those stops are a
// few per process or thread, not one per syscall.

// NotifyHelperArg makes the sensor binary install the notifying filter on itself, hand the listener to the
// sensor and exec the app (see NotifyHelper).
const NotifyHelperArg = "__slimoci_notify"

// The sensor's backends (Config.Sensor).
const (
	SensorPtrace = "ptrace"
	SensorNotify = "notify"
)

// notifySyncFD is the helper's end of the socket it passes the listener on (the first of ExtraFiles).
const notifySyncFD = 3

// struct seccomp_notif, seccomp_notif_resp and seccomp_data (linux/seccomp.h); the ioctls x/sys lacks.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

const (
	ioctlNotifIDValid  = 0x40082102 // SECCOMP_IOW(2, __u64)
	ioctlNotifSetFlags = 0x40082104 // SECCOMP_IOW(4, __u64)
	offArgs            = 16         // offsetof(struct seccomp_data, args)
)

// NotifySupported says whether the kernel has what the notify backend needs: user notification with
// SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5).
func NotifySupported() bool {
	var uname unix.Utsname
	if err := unix.Uname(&uname); err != nil {
		return false
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(uname.Release[:]), "%d.%d", &major, &minor)
	return major > 5 || major == 5 && minor >= 5
}

// notifyFilter is traceFilter(all) with RET_USER_NOTIF for RET_TRACE. In all mode it first lets through,
// unseen, the helper's own two syscalls that follow the filter and come before the sensor holds the
// listener (they would wait for an answer no one can give yet): the sendmsg of the listener on fd over the
// message at msg, and the restoring of the signal mask at mask. Each is matched by its pointer argument as
// well, an address in the helper that the app is as good as certain never to pass with the same number.
func notifyFilter(all bool, fd int, msg, mask uintptr) []unix.SockFilter {
	var prog []unix.SockFilter
	if all {
		prog = append(prog, allowCall(unix.SYS_SENDMSG, map[int]uint64{0: uint64(fd), 1: uint64(msg)})...)
		prog = append(prog, allowCall(unix.SYS_RT_SIGPROCMASK, map[int]uint64{1: uint64(mask)})...)
	}
	for _, in := range traceFilter(all) {
		if in.Code == unix.BPF_RET|unix.BPF_K && in.K == unix.SECCOMP_RET_TRACE {
			in.K = unix.SECCOMP_RET_USER_NOTIF
		}
		prog = append(prog, in)
	}
	return prog
}

// allowCall is a filter block that returns RET_ALLOW for the sensor's own architecture's syscall nr when
// each argument i equals args[i], and otherwise goes on with the instruction after it.
func allowCall(nr uint32, args map[int]uint64) []unix.SockFilter {
	b := []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch), jeq(arches[0].audit, 0, 0),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr), jeq(nr, 0, 0)}
	for i := 0; i < 6; i++ {
		v, ok := args[i]
		if !ok {
			continue
		}
		off := uint32(offArgs + 8*i)
		b = append(b, stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off), jeq(uint32(v), 0, 0),
			stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off+4), jeq(uint32(v>>32), 0, 0))
	}
	b = append(b, ret(unix.SECCOMP_RET_ALLOW))
	for i := range b {
		if b[i].Code == unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K {
			b[i].Jf = uint8(len(b) - i - 1) // past the RET_ALLOW
		}
	}
	return b
}

// NotifyHelper is the notify backend's helper: args are [NotifyHelperArg, "all"|"paths", CPUS, "--", app
// argv...] as for ExecHelper, and fd 3 is a unix socket to the sensor. It installs the notifying filter on
// its own thread only (not TSYNC: the Go runtime's other threads stay unseen, and die at the exec), sends
// the listener to the sensor over fd 3 and execs the app. It never returns on success.
//
// Between the filter and the sendmsg nothing may wait for the sensor, which has no listener yet: the two
// syscalls of that window are let through by the filter (notifyFilter), and signals are blocked on the thread
// during it, as a signal handler's return (rt_sigreturn) would be notified.
func NotifyHelper(args []string) error {
	if len(args) < 5 || args[0] != NotifyHelperArg || args[3] != "--" {
		return fmt.Errorf("usage: %s all|paths CPUS -- ARGV", NotifyHelperArg)
	}
	argv := args[4:]
	runtime.LockOSThread() // one thread to the exec, as in ExecHelper
	if err := helperSetup(args[2]); err != nil {
		return err
	}
	if !hasSysAdmin() {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	unix.CloseOnExec(notifySyncFD)
	// The message and the masks live on the heap, at addresses fixed before the filter names them.
	type window struct {
		msg        unix.Msghdr
		iov        unix.Iovec
		data       [1]byte
		cmsg       [24]byte // unix.CmsgSpace(4)
		all, saved unix.Sigset_t
	}
	w := new(window)
	rights := unix.UnixRights(-1)
	copy(w.cmsg[:], rights)
	w.iov.Base, w.iov.Len = &w.data[0], 1
	w.msg.Iov, w.msg.Iovlen = &w.iov, 1
	w.msg.Control, w.msg.Controllen = &w.cmsg[0], uint64(len(rights))
	for i := range w.all.Val {
		w.all.Val[i] = ^uint64(0)
	}
	prog := notifyFilter(args[1] == "all", notifySyncFD, uintptr(unsafe.Pointer(&w.msg)), uintptr(unsafe.Pointer(&w.saved)))
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&w.all)), uintptr(unsafe.Pointer(&w.saved)), 8, 0, 0); e != 0 {
		return fmt.Errorf("blocking signals: %w", e)
	}
	// WAIT_KILLABLE_RECV (Linux 5.19): once the sensor has a notification, a signal no longer interrupts
	// the app's syscall (which would restart it, or fail it with EINTR where a ptrace stop would not).
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	fd, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if e == unix.EINVAL {
		fd, _, e = unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	}
	if e != 0 {
		unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&w.saved)), 0, 8, 0, 0)
		return fmt.Errorf("installing the seccomp filter: %w", e)
	}
	binary.NativeEndian.PutUint32(w.cmsg[unix.SizeofCmsghdr:], uint32(fd))
	_, _, e = unix.RawSyscall(unix.SYS_SENDMSG, notifySyncFD, uintptr(unsafe.Pointer(&w.msg)), 0)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&w.saved)), 0, 8, 0, 0)
	if e != 0 {
		return fmt.Errorf("passing the listener: %w", e)
	}
	// As in ExecHelper, the PATH search is seen: a missing program is recorded as looked up.
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return unix.Exec(bin, argv, os.Environ())
}

// helperSetup is what both helpers do before their filter, on the thread that execs the app: the app gets
// the CPUs in cpus back ("0,1,3"; "" leaves them) and none of the sensor's observing capabilities (the
// sandbox gives PID 1 CAP_SYS_PTRACE to observe an app running as another user; the app must not keep it).
func helperSetup(cpus string) error {
	if cpus != "" {
		var set unix.CPUSet
		for _, c := range strings.Split(cpus, ",") {
			if n, err := strconv.Atoi(c); err == nil {
				set.Set(n)
			}
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("restoring the CPU affinity: %w", err)
		}
	}
	for _, c := range observingCaps {
		unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
	}
	return dropCaps(observingCaps)
}

// TraceNotify is Trace with the notify backend: the same record, from seccomp user notifications for the
// syscalls and ptrace events for the processes.
func TraceNotify(argv []string, o TraceOptions) (*Record, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all unix.CPUSet
	unix.SchedGetaffinity(0, &all)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making the listener's socket: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(sp[0]), "listener"), os.NewFile(uintptr(sp[1]), "listener")
	defer mine.Close()
	n := newNotifier(o.AllSyscalls)
	t, err := startTraced(NotifyHelperArg, argv, o, &all, 0, []*os.File{theirs})
	if err != nil {
		return nil, err
	}
	pid := t.root
	// The listener is served on a thread of its own, pinned to one CPU as the ptrace backend's tracer is;
	// the SYNC_WAKE_UP hand-over brings the app's thread there for the syscall and lets it go after.
	var first unix.CPUSet
	for c := 0; c < len(all)*64; c++ {
		if all.IsSet(c) {
			first.Set(c)
			break
		}
	}
	served := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: the thread's affinity is not given back to the runtime
		if all.Count() > 1 {
			unix.SchedSetaffinity(0, &first)
		}
		fd, err := receiveListener(mine)
		if err != nil {
			// A helper that sent something else waits for an answer no one will give.
			unix.Kill(pid, unix.SIGKILL)
			served <- err
			return
		}
		served <- nil
		n.serve(fd)
		unix.Close(fd)
		close(n.done)
	}()
	if o.Started != nil {
		o.Started(pid)
	}
	rec, err := t.loop()
	// A helper that failed before its filter said why on stderr and exited 127, as ExecHelper does: its
	// record says so, it is not the sensor's error.
	if <-served == nil {
		// The listener reports no task left once the last process with the filter is reaped, which loop
		// has done; a process that escaped the reaping cannot hold the record back for long.
		select {
		case <-n.done:
		case <-time.After(2 * time.Second):
		}
	}
	n.mergeInto(t)
	complete(rec)
	return rec, err
}

// receiveListener reads the listener the helper sends over the socket f and checks what it is.
func receiveListener(f *os.File) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		_, oobn, _, _, err := unix.Recvmsg(int(f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("receiving the seccomp listener: %w", err)
		}
		fds := rights(oob[:oobn])
		if len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return -1, errors.New("receiving the seccomp listener: the helper sent none (it failed before its filter)")
		}
		if l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fds[0])); l != "anon_inode:seccomp notify" {
			unix.Close(fds[0])
			return -1, fmt.Errorf("receiving the seccomp listener: got %q", l)
		}
		// Best effort: the hand-over on one CPU needs Linux 6.6; without it notify still works, slower.
		unix.Syscall(unix.SYS_IOCTL, uintptr(fds[0]), ioctlNotifSetFlags, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
		return fds[0], nil
	}
}

// notifier records what the notifications show, into a record of its own that TraceNotify merges into the
// tracer's once the app is gone (the ptrace thread records the execs meanwhile).
type notifier struct {
	mu sync.Mutex
	t  *tracer
	// one is a scratch tracer: a notification is decoded into it, and kept only when the notification is
	// still valid once its memory was read (the process may have died, and its pid been reused, meanwhile).
	one    *tracer
	merged bool
	done   chan struct{}
}

func newNotifier(all bool) *notifier {
	mk := func() *tracer {
		t := &tracer{rec: &Record{Files: map[string][]string{}}, all: all}
		if all {
			t.rec.Syscalls = map[string]int{}
		}
		return t
	}
	return &notifier{t: mk(), one: mk(), done: make(chan struct{})}
}

// serve answers every notification on the listener fd with CONTINUE, after recording it, until no task
// is left with the filter.
func (n *notifier) serve(fd int) {
	var req seccompNotif
	for {
		req = seccompNotif{}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req)))
		switch e {
		case 0:
		case unix.EINTR:
			continue
		case unix.ENOENT:
			// The task died before its notification was read, or no task is left (POLLHUP).
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 0); err == nil && fds[0].Revents&unix.POLLHUP != 0 && fds[0].Revents&unix.POLLIN == 0 {
				return
			}
			continue
		default:
			return
		}
		n.record(fd, &req)
		resp := seccompNotifResp{ID: req.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		// ENOENT: the task was killed meanwhile (or, on a kernel without WAIT_KILLABLE_RECV, interrupted by a
		// signal: its syscall restarts and comes again).
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

func (n *notifier) record(fd int, req *seccompNotif) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.merged {
		return
	}
	s := syscallStop{pid: int(req.Pid), arch: req.Arch, nr: uint32(req.Nr), args: req.Args}
	a, _ := tablesFor(s.arch)
	if _, ok := a.calls[s.nr]; !ok {
		n.t.onSyscall(s) // counted only: nothing is read from the process
		return
	}
	one := n.one
	one.onSyscall(s)
	id := req.ID
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ioctlNotifIDValid, uintptr(unsafe.Pointer(&id))); e == 0 {
		mergeRecord(n.t, one.rec)
	}
	clear(one.rec.Files)
	clear(one.rec.Syscalls)
	one.rec.pathBytes = 0
}

// mergeInto adds what the notifications recorded to t's record; later notifications are not recorded.
func (n *notifier) mergeInto(t *tracer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.merged = true
	mergeRecord(t, n.t.rec)
	t.rec.Dropped += n.t.rec.Dropped
}

// mergeRecord adds r's files and syscall counts to t's record, within its bounds.
func mergeRecord(t *tracer, r *Record) {
	for p, ops := range r.Files {
		for _, op := range ops {
			t.file(p, op)
		}
	}
	for name, c := range r.Syscalls {
		t.rec.Syscalls[name] += c
	}
}
