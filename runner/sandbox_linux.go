package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	seccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/sensor"

	// libcontainer's init: nsenter's constructor, and device rules on cgroup v1.
	_ "github.com/opencontainers/cgroups/devices"
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// InitArg is the argument libcontainer re-executes the binary with to start a container's init. A binary that
// uses this package calls Init first thing when os.Args[1] is InitArg (see cmd/slimoci/main.go).
const InitArg = "init"

// Init is the container's bootstrap (or Preflight's child): it does not return.
func Init() {
	preflightChild()
	libcontainer.Init()
}

// Spec says what to run in the sandbox.
type Spec struct {
	// Args, Env and Cwd are the process's; Cwd "" means "/".
	Args []string
	Env  []string
	Cwd  string
	// UID, GID and Groups are the user to run as (resolved from the image's /etc/passwd by the caller).
	UID, GID int
	Groups   []int
	// HostNetwork shares the host's network namespace; otherwise the sandbox has its own, loopback up.
	HostNetwork bool
	// Hostname of the sandbox; "" means "slimoci".
	Hostname string
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
	// Sensor is the host path of the static slimoci-sensor binary. When set, the sensor is PID 1: it starts
	// the app under its tracer, as UID/GID, and Record returns what it saw.
	Sensor string
	// Mounts bind host paths into the sandbox (docker's -v); what is under them is not the image's.
	Mounts []Mount
	// AllSyscalls makes the sensor learn every syscall the app makes (for a seccomp profile), not only the
	// path syscalls.
	AllSyscalls bool
	// SensorBackend is how the sensor observes: sensor.SensorNotify, sensor.SensorPtrace, or "" for the
	// sensor's choice (notify where the kernel has it). Both give the same record.
	SensorBackend string
	// Limits bound what the app may use; zero fields get the defaults (see Limits).
	Limits Limits
	// SeccompUnconfined runs the app without the default seccomp profile (podman's --security-opt
	// seccomp=unconfined); the sensor's own filter stays.
	SeccompUnconfined bool
	// ExecTimeout bounds each exec probe; 0 means DefaultExecTimeout.
	ExecTimeout time.Duration
	// HostUserns runs a root sandbox without a user namespace (--userns=host): the app's root is then the
	// host's uid 0, confined by namespaces, capabilities, seccomp and cgroups only.
	HostUserns bool
	// ExtraHosts are added to the sandbox's /etc/hosts (--etc-hosts-map).
	ExtraHosts []HostEntry
	// Volumes are anonymous volumes (--volume DIR): each DIR a tmpfs of its own (at most Limits.WritableSize)
	// holding a copy of what the image has there, as docker and podman fill a new anonymous volume. What the
	// app reads there is the image's (a runtime fills the volume from the slim image alike); what it writes
	// goes with the sandbox.
	Volumes []string
	// Publish relays host loopback ports to the app's ports while Observe runs (--publish-port).
	Publish []PortMapping
	// Emulator, when set, is the binfmt_misc handler the app's foreign programs run under (CheckEmulation):
	// the sensor records the guest's execs and drops the emulator's own lookups.
	Emulator *Emulator
}

// DefaultExecTimeout bounds an exec probe when Spec.ExecTimeout is 0.
const DefaultExecTimeout = 60 * time.Second

// Mount binds a host path into the sandbox.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// ParseMount reads docker's -v syntax: SRC:DST[:ro|rw]. SRC must be an absolute host path that exists.
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || !filepath.IsAbs(parts[0]) || !filepath.IsAbs(parts[1]) {
		return Mount{}, fmt.Errorf("mount %q: want /host/path:/container/path[:ro]", s)
	}
	m := Mount{Source: parts[0], Destination: filepath.Clean(parts[1])}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return Mount{}, fmt.Errorf("mount %q: option %q is not ro or rw", s, parts[2])
		}
	}
	if _, err := os.Stat(m.Source); err != nil {
		return Mount{}, fmt.Errorf("mount %q: %w", s, err)
	}
	return m, nil
}

// defaultCaps is the capability set docker and podman give a container's process.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// nofile is docker's open-files limit, 1048576, or the hard limit slimoci has when lower (raising it needs
// CAP_SYS_RESOURCE, which root does not always have).
func nofile() uint64 {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err == nil && l.Max < 1048576 {
		return l.Max
	}
	return 1048576
}

// sensorDir is where the sensor's binary is, inside the sandbox, mounted read-only: under /dev, a tmpfs the
// runtime makes, so nothing is created in the image's tree. Its config comes on its stdin and its record
// goes to an inherited pipe: nothing the app can reach is read or written by path.
const sensorDir = "/dev/.slimoci"

// Options tune the sandbox. The zero value works as root.
type Options struct {
	// StateDir holds the sandbox's state, overlay and generated files; "" means a new directory under
	// os.TempDir(). It is removed on Close.
	StateDir string
	// WorkRoot is the directory slimoci made for its work (its per-user directory), above StateDir: as root
	// with a user namespace, the directories from StateDir's parent up to WorkRoot get an ACL entry letting
	// the sandbox's root search them; those above WorkRoot must let others search them already. "" means
	// StateDir's parent only.
	WorkRoot string
	Logger   *slog.Logger
}

// Sandbox is a running container over an unpacked tree. The tree is its overlay's lower directory: what the
// app writes goes to the upper directory, never into the tree.
type Sandbox struct {
	id        string
	state     string
	merged    string
	container *libcontainer.Container
	process   *libcontainer.Process
	log       *slog.Logger
	spec      Spec
	execs     int
	// rootless: no overlay (a copy), a user namespace, no cgroup.
	rootless bool
	tree     string
	// upper is the overlay's upper directory; mountpoints are the destinations the runtime mounts on.
	upper       string
	mountpoints []string
	// control is the runner's end of the sensor's control socket (relay, and the sensor's lifeline);
	// record is the sensor's record as read from its pipe.
	control *sensor.Control
	record  *recordReader
	// rw is the tmpfs holding the overlay's upper and work directories (--writable-size); lower is the
	// idmapped mount of the tree (root with a user namespace).
	rw, lower string
	limits    Limits
	// ids is the sandbox's host id range when it has a user namespace as root (nil otherwise); ungrant
	// takes back its search permission on the directories above the state directory.
	ids      *idRange
	ungrant  func()
	workRoot string
	// status reports what an observation of the sandbox does (Plan.Status); nil sends nothing.
	status *status

	waitOnce sync.Once
	exit     *os.ProcessState
	waitErr  error
	done     chan struct{}
}

// Start runs spec in a new sandbox whose root is an overlay over tree. Close must be called, whatever happens.
func Start(ctx context.Context, tree string, spec Spec, o *Options) (s *Sandbox, err error) {
	opts := Options{}
	if o != nil {
		opts = *o
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() != 0 {
		// Rootless: fail in one line where the sandbox cannot be made (see Preflight).
		if err := Preflight(); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	id := newID()
	state := opts.StateDir
	if state == "" {
		if state, err = os.MkdirTemp("", "slimoci-sandbox-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	spec.Limits = spec.Limits.fill()
	sb := &Sandbox{id: id, state: state, log: opts.Logger, done: make(chan struct{}), spec: spec, rootless: os.Geteuid() != 0, limits: spec.Limits, workRoot: opts.WorkRoot, tree: tree}
	s = sb
	defer func() {
		if err != nil {
			sb.Close()
		}
	}()
	if s.rootless {
		// Rootless: one id mapped (the caller's, as root inside), so the app runs as root in the sandbox; no
		// overlay on the host, so the app runs on a copy of the tree.
		if spec.UID != 0 || spec.GID != 0 {
			s.log.Warn("rootless: only your own id is mapped into the sandbox, so the app runs as root there, not as the image's user", "uid", spec.UID, "gid", spec.GID)
		}
		spec.UID, spec.GID, spec.Groups = 0, 0, nil
		s.spec = spec
		s.merged, s.tree = filepath.Join(state, "copy"), tree
		if err := copyTree(tree, s.merged); err != nil {
			return nil, err
		}
	} else {
		if !spec.HostUserns {
			r := newIDRange()
			s.ids = &r
		}
		if s.merged, err = s.mountOverlay(tree); err != nil {
			return nil, fmt.Errorf("mounting the overlay: %w", err)
		}
	}
	s.log.Debug("sandbox: root filesystem ready", "after", time.Since(t0))
	cfg, err := s.config(spec)
	if err != nil {
		return nil, err
	}
	s.log.Debug("sandbox: config ready", "after", time.Since(t0))
	if s.container, err = libcontainer.Create(filepath.Join(state, "run"), id, cfg); err != nil {
		return nil, fmt.Errorf("creating the container: %w", err)
	}
	s.process = &libcontainer.Process{
		Args: spec.Args, Env: spec.Env, Cwd: orRoot(spec.Cwd),
		UID: spec.UID, GID: spec.GID, AdditionalGroups: spec.Groups,
		Stdout: orDiscard(spec.Stdout), Stderr: orDiscard(spec.Stderr),
		Init: true,
	}
	var sensorEnds []*os.File
	if spec.Sensor != "" {
		// The sensor is PID 1, as root with the default capabilities plus CAP_SYS_PTRACE (to read the memory of
		// an app running as another user); its helper drops that capability before the app starts. Its config
		// comes on stdin, its record goes to a pipe, and the control socket is its lifeline.
		ctl, ctlEnd, err := sensor.NewControlPair()
		if err != nil {
			return nil, err
		}
		s.control = ctl
		rec, recEnd, err := newRecordReader()
		if err != nil {
			ctlEnd.Close()
			return nil, err
		}
		s.record = rec
		sensorEnds = []*os.File{recEnd, ctlEnd}
		cfg, err := json.Marshal(s.sensorConfig(spec.Args, true))
		if err != nil {
			return nil, err
		}
		s.process.Args = []string{sensorDir + "/sensor"}
		s.process.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		s.process.UID, s.process.GID, s.process.AdditionalGroups, s.process.Cwd = 0, 0, nil, "/"
		s.process.Stdin = bytes.NewReader(cfg)
		s.process.ExtraFiles = sensorEnds
	}
	s.log.Debug("sandbox: container created", "after", time.Since(t0))
	err = s.container.Run(s.process)
	s.log.Debug("sandbox: started", "after", time.Since(t0))
	for _, f := range sensorEnds {
		f.Close() // the sensor holds them now; the record's EOF comes when it exits
	}
	if err != nil {
		return nil, fmt.Errorf("starting %v: %w", spec.Args, err)
	}
	go func() {
		s.exit, s.waitErr = s.process.Wait()
		close(s.done)
	}()
	return s, nil
}

func orRoot(s string) string {
	if s == "" {
		return "/"
	}
	return s
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "slimoci-" + hex.EncodeToString(b)
}

// writableInodes bounds the files the app may create (each costs slimoci a name when it lists them).
const writableInodes = 1 << 20

// mountOverlay mounts tree read-only under a writable upper directory, on a tmpfs of the writable size.
func (s *Sandbox) mountOverlay(tree string) (string, error) {
	rw := filepath.Join(s.state, "rw")
	if err := os.Mkdir(rw, 0o700); err != nil {
		return "", err
	}
	// The app's writes land here (in RAM, charged to the sandbox's memory cgroup too), never beyond the size.
	if err := unix.Mount("tmpfs", rw, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,nr_inodes=%d,mode=0700", s.limits.WritableSize, writableInodes)); err != nil {
		return "", &os.PathError{Op: "mount tmpfs", Path: rw, Err: err}
	}
	s.rw = rw
	upper, work, merged := filepath.Join(rw, "upper"), filepath.Join(rw, "work"), filepath.Join(s.state, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	lower := tree
	if s.ids != nil {
		// The app's root (the range's first id) owns the overlay's root, as the image's root owns the tree's;
		// the tree is seen through an idmapped mount.
		lower = filepath.Join(s.state, "lower")
		if err := os.Mkdir(lower, 0o700); err != nil {
			return "", err
		}
		if err := s.ids.idmappedMount(tree, lower); err != nil {
			return "", err
		}
		s.lower = lower
		fi, err := os.Stat(tree)
		if err != nil {
			return "", err
		}
		if err := os.Chown(upper, int(s.ids.base), int(s.ids.base)); err != nil {
			return "", err
		}
		if err := os.Chmod(upper, fi.Mode().Perm()); err != nil {
			return "", err
		}
		// The app's root must reach its root filesystem: the state directory becomes its own (0700: no one
		// else's), and it may search the directories above it that others may not (see grantSearch).
		if err := os.Chown(s.state, int(s.ids.base), int(s.ids.base)); err != nil {
			return "", err
		}
		if s.ungrant, err = grantSearch(filepath.Dir(s.state), s.workRoot, s.ids.base); err != nil {
			return "", err
		}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return "", &os.PathError{Op: "mount overlay", Path: merged, Err: err}
	}
	s.upper = upper
	return merged, nil
}

// config is runc's default container (its masked and read-only paths, capabilities, devices and mounts) for
// the process, with the hosts, hostname and resolv.conf files runtimes provide.
func (s *Sandbox) config(spec Spec) (*configs.Config, error) {
	rs := specconv.Example()
	rs.Root.Path = s.merged
	rs.Root.Readonly = false
	rs.Process.Terminal = false
	rs.Process.Args = spec.Args
	rs.Hostname = spec.Hostname
	if rs.Hostname == "" {
		rs.Hostname = "slimoci"
	}
	// Relative: nested under slimoci's own cgroup, within its limits. Rootless, there is no cgroup to make.
	rs.Linux.CgroupsPath = "slimoci/" + s.id
	// Limits (docker's flags): as root through the cgroup, rootless through rlimits (see rlimits). The
	// example's device rules (deny all but the runtime's devices) stay.
	if rs.Linux.Resources == nil {
		rs.Linux.Resources = &specs.LinuxResources{}
	}
	s.limits.apply(rs.Linux.Resources)
	if s.rootless {
		specconv.ToRootless(rs) // a user namespace mapping the caller to root; /sys bound, not mounted
		rs.Linux.CgroupsPath = ""
		rs.Linux.Resources = nil
		if !spec.HostNetwork {
			rs.Linux.Namespaces = append(rs.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		}
	}
	if s.ids != nil {
		rs.Linux.Namespaces = append(rs.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.ids.base, Size: idSize}}
		rs.Linux.UIDMappings, rs.Linux.GIDMappings = m, m
		if spec.HostNetwork {
			// sysfs cannot be mounted from a user namespace that does not own the network namespace: bound.
			for i, mnt := range rs.Mounts {
				if mnt.Type == "sysfs" {
					rs.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
				}
			}
		}
	}
	if spec.HostNetwork {
		var keep []specs.LinuxNamespace
		for _, ns := range rs.Linux.Namespaces {
			if ns.Type != "network" {
				keep = append(keep, ns)
			}
		}
		rs.Linux.Namespaces = keep
	}
	for _, m := range spec.Mounts {
		opt := "rw"
		if m.ReadOnly {
			opt = "ro"
		}
		rs.Mounts = append(rs.Mounts, specs.Mount{Destination: m.Destination, Source: m.Source, Type: "bind", Options: []string{"rbind", opt}})
	}
	for _, v := range spec.Volumes {
		rs.Mounts = append(rs.Mounts, s.volumeMount(v))
	}
	files, err := s.etcFiles(rs.Hostname, spec.HostNetwork)
	if err != nil {
		return nil, err
	}
	for dst, src := range files {
		rs.Mounts = append(rs.Mounts, specs.Mount{Destination: dst, Source: src, Type: "bind", Options: []string{"rbind", "ro"}})
	}
	// The capability set docker and podman give a container (runc's example has only three).
	caps := append([]string(nil), defaultCaps...)
	rs.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if spec.Sensor != "" {
		dir, err := s.sensorFiles(spec)
		if err != nil {
			return nil, fmt.Errorf("preparing the sensor: %w", err)
		}
		rs.Mounts = append(rs.Mounts, specs.Mount{Destination: sensorDir, Source: dir, Type: "bind", Options: []string{"rbind", "ro", "nosuid", "nodev"}})
		withPtrace := append(caps, "CAP_SYS_PTRACE")
		rs.Process.Capabilities = &specs.LinuxCapabilities{Bounding: withPtrace, Effective: withPtrace, Permitted: withPtrace}
	}
	if !spec.SeccompUnconfined {
		if !seccompBuilt {
			return nil, ErrNoSeccomp
		}
		// The default profile docker and podman apply, for the app's capabilities: the sensor's extra
		// CAP_SYS_PTRACE must not widen it (kcmp, pidfd_getfd, ...), and what the sensor calls to trace
		// (ptrace, process_vm_readv) the profile allows every container since kernel 4.8. The sensor's
		// tracing filter is stacked on it by the sensor.
		appCaps := *rs
		appCaps.Process = &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}
		if rs.Linux.Seccomp, err = seccomp.GetDefaultProfile(&appCaps); err != nil {
			return nil, fmt.Errorf("making the seccomp profile: %w", err)
		}
	}
	for _, m := range rs.Mounts {
		s.mountpoints = append(s.mountpoints, filepath.Clean(m.Destination))
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: s.id, Spec: rs, RootlessEUID: s.rootless, RootlessCgroups: s.rootless})
	if err != nil {
		return nil, fmt.Errorf("making the container config: %w", err)
	}
	// If slimoci dies (SIGKILL, a crash), so does the sandbox: nothing of it goes on running.
	cfg.ParentDeathSignal = int(unix.SIGKILL)
	cfg.Rlimits = s.limits.rlimits(s.rootless)
	if !spec.HostNetwork {
		cfg.Networks = []*configs.Network{{Type: "loopback", Address: "127.0.0.1/0", Gateway: "localhost"}}
	}
	return cfg, nil
}

// sensorFiles puts the sensor's binary in the directory mounted read-only at sensorDir.
func (s *Sandbox) sensorFiles(spec Spec) (string, error) {
	dir := filepath.Join(s.state, "sensor")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(spec.Sensor)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(dir, "sensor"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o555)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dir, out.Close()
}

// sensorConfig is the config a sensor gets on its stdin; control is set for PID 1 only.
func (s *Sandbox) sensorConfig(args []string, control bool) sensor.Config {
	return sensor.Config{
		Args: args, Env: s.spec.Env, Cwd: orRoot(s.spec.Cwd), UID: s.spec.UID, GID: s.spec.GID, Groups: s.spec.Groups,
		AllSyscalls: s.spec.AllSyscalls, Sensor: s.spec.SensorBackend, Control: control,
		Emulation: s.spec.Emulator.sensorEmulation(),
	}
}

// Record returns what the sensor saw, once the sandbox's process has exited.
func (s *Sandbox) Record() (*sensor.Record, error) {
	if s.record == nil {
		return nil, errors.New("reading the sensor's record: no sensor")
	}
	return s.record.wait(recordWait)
}

// recordWait bounds the wait for a record once its sensor has exited (or been killed).
const recordWait = 10 * time.Second

// recordReader reads a sensor's record from the read end of its pipe, up to sensor.MaxRecordBytes, from the
// moment the sensor starts: a sensor writing a large record never blocks on a full pipe.
type recordReader struct {
	done chan struct{}
	rec  *sensor.Record
	err  error
	r    *os.File
}

func newRecordReader() (*recordReader, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("making the record pipe: %w", err)
	}
	rr := &recordReader{done: make(chan struct{}), r: r}
	go func() {
		defer close(rr.done)
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, sensor.MaxRecordBytes+1))
		switch {
		case err != nil:
			rr.err = fmt.Errorf("reading the sensor's record: %w", err)
		case len(b) > sensor.MaxRecordBytes:
			rr.err = fmt.Errorf("reading the sensor's record: %w: over %d MiB", ErrRecordLimit, sensor.MaxRecordBytes>>20)
		case len(b) == 0:
			rr.err = errors.New("reading the sensor's record: the sensor wrote none (it was killed, or failed: --show-clogs shows its output)")
		default:
			var rec sensor.Record
			if err := json.Unmarshal(b, &rec); err != nil {
				rr.err = fmt.Errorf("reading the sensor's record: %w", err)
			} else {
				rr.rec = &rec
			}
		}
	}()
	return rr, w, nil
}

// wait returns the record once the pipe's writers are gone, or an error after d.
func (rr *recordReader) wait(d time.Duration) (*sensor.Record, error) {
	select {
	case <-rr.done:
	case <-time.After(d):
		// A process still holds the pipe's write end: stop reading.
		rr.r.SetReadDeadline(time.Now())
		<-rr.done
		return nil, fmt.Errorf("reading the sensor's record: nothing after %s", d)
	}
	if rr.err != nil {
		return nil, rr.err
	}
	if rr.rec.Dropped > 0 {
		return rr.rec, fmt.Errorf("%w: the app named more than %d distinct paths or %d programs; %d were not recorded", ErrRecordLimit, sensor.MaxFiles, sensor.MaxExecs, rr.rec.Dropped)
	}
	return rr.rec, nil
}

// etcFiles writes /etc/hosts, /etc/hostname and /etc/resolv.conf for the sandbox, as runtimes do; they are
// mounted over the image's and never count as its files.
func (s *Sandbox) etcFiles(hostname string, hostNet bool) (map[string]string, error) {
	dir := filepath.Join(s.state, "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	hosts := "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for _, h := range s.spec.ExtraHosts {
		hosts += h.IP + "\t" + h.Name + "\n"
	}
	resolv := "nameserver 127.0.0.1\n"
	if hostNet {
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			resolv = string(b)
		}
	}
	files := map[string]string{"/etc/hosts": hosts, "/etc/hostname": hostname + "\n", "/etc/resolv.conf": resolv}
	out := map[string]string{}
	for dst, content := range files {
		src := filepath.Join(dir, filepath.Base(dst))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			return nil, err
		}
		out[dst] = src
	}
	return out, nil
}

// Wait waits for the sandbox's process to exit, or ctx to end, and returns its exit code.
func (s *Sandbox) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	if s.waitErr != nil && s.exit == nil {
		return -1, s.waitErr
	}
	if ws, ok := s.exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return s.exit.ExitCode(), nil
}

// Signal sends sig to the sandbox's init.
func (s *Sandbox) Signal(sig os.Signal) error { return s.process.Signal(sig) }

// Dial connects to addr inside the sandbox's network namespace (or the host's, with HostNetwork). With a
// sensor, it goes through the sensor's relay; otherwise (root only) the calling thread enters the network
// namespace to dial. The connection keeps working from any goroutine once made.
func (s *Sandbox) Dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	// Only the app's own loopback: whatever the app answers (a redirect, a link, a sitemap), slimoci dials
	// or resolves no other host for it.
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dialing the app at %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dialing %q: slimoci dials the app on its loopback only", addr)
	}
	st, err := s.container.State()
	if err != nil {
		return nil, err
	}
	if s.control != nil {
		return s.control.Dial(ctx, addr)
	}
	nsPath := st.NamespacePaths[configs.NEWNET]
	if nsPath == "" {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("entering the sandbox's network: %w", err)
	}
	defer func() {
		if serr := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread is in the wrong namespace: let it die with the goroutine rather than be reused.
			runtime.Goexit()
		}
	}()
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// Close stops the process (SIGKILL) and removes everything the sandbox made: the container and its cgroups,
// the overlay mount, the state directory. It is safe to call more than once.
func (s *Sandbox) Close() error {
	var errs []error
	if s.container != nil {
		if s.process != nil {
			s.container.Signal(unix.SIGKILL)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				errs = append(errs, errors.New("the sandbox's process did not die"))
			}
		}
		if err := s.container.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("destroying the container: %w", err))
		}
		if !s.rootless {
			removeCgroupParents(s.id)
		}
		s.container = nil
	}
	if s.merged != "" && !s.rootless {
		if err := unix.Unmount(s.merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting the overlay: %w", err))
		}
		s.merged = ""
	}
	if s.lower != "" {
		if err := unix.Unmount(s.lower, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting the idmapped tree: %w", err))
		}
		s.lower = ""
	}
	if s.rw != "" {
		if err := unix.Unmount(s.rw, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting the writable layer: %w", err))
		}
		s.rw = ""
	}
	if s.control != nil {
		s.control.Close()
		s.control = nil
	}

	if s.ungrant != nil {
		s.ungrant()
		s.ungrant = nil
	}
	if s.state != "" {
		if err := rootfs.RemoveTree(s.state); err != nil {
			errs = append(errs, err)
		}
		s.state = ""
	}
	return errors.Join(errs...)
}

// removeCgroupParents removes the slimoci/ID directories libcontainer leaves above the leaf it destroys, in
// every hierarchy slimoci's own cgroup is in.
func removeCgroupParents(id string) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl := parts[1]
		for _, mnt := range cgroupMounts(ctrl) {
			os.Remove(filepath.Join(mnt, parts[2], "slimoci", id))
			os.Remove(filepath.Join(mnt, parts[2], "slimoci"))
		}
	}
}

func cgroupMounts(ctrl string) []string {
	if ctrl == "" {
		return []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}
	}
	var out []string
	for _, c := range strings.Split(ctrl, ",") {
		out = append(out, filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(c, "name=")))
	}
	out = append(out, filepath.Join("/sys/fs/cgroup", ctrl))
	return out
}

// ExecResult is an exec probe's outcome, for the record.
type ExecResult struct {
	Args         []string `json:"args"`
	ExitCode     int      `json:"exitCode"`
	OutputSize   int64    `json:"outputSize"`
	OutputSHA256 string   `json:"outputSha256"`
	Error        string   `json:"error,omitempty"`
}

// OK reports whether the command ran and exited 0.
func (r ExecResult) OK() bool { return r.Error == "" && r.ExitCode == 0 }

// Exec runs args inside the running sandbox, as the app's user with its environment and working directory,
// under a sensor of its own, and waits for it (or ctx: then it is killed). Its output goes to out as well as
// into the result's digest; what it did is returned as a record to merge with the app's.
func (s *Sandbox) Exec(ctx context.Context, args []string, out io.Writer) (ExecResult, *sensor.Record) {
	return s.exec(ctx, args, out, s.execTimeout(), "--exec-timeout")
}

// execTimeout is Spec.ExecTimeout or its default.
func (s *Sandbox) execTimeout() time.Duration {
	if s.spec.ExecTimeout <= 0 {
		return DefaultExecTimeout
	}
	return s.spec.ExecTimeout
}

// exec is Exec with its own timeout; limit names it in the timeout's error.
func (s *Sandbox) exec(ctx context.Context, args []string, out io.Writer, timeout time.Duration, limit string) (ExecResult, *sensor.Record) {
	res := ExecResult{Args: args, ExitCode: -1}
	if s.control == nil {
		res.Error = "exec probes need the sensor"
		return res, nil
	}
	s.execs++
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := json.Marshal(s.sensorConfig(args, false))
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	rr, recEnd, err := newRecordReader()
	if err != nil {
		res.Error = err.Error()
		return res, nil
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(h, orDiscard(out))}
	// The probe's sensor runs as the app's user with the app's capabilities: it traces a child of its own,
	// which needs no CAP_SYS_PTRACE.
	caps := &configs.Capabilities{Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps}
	p := &libcontainer.Process{
		Args: []string{sensorDir + "/sensor"},
		Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cwd:  "/", Stdin: bytes.NewReader(cfg), Stdout: cw, Stderr: cw,
		UID: s.spec.UID, GID: s.spec.GID, AdditionalGroups: s.spec.Groups,
		Capabilities: caps, ExtraFiles: []*os.File{recEnd},
	}
	err = s.container.Run(p)
	recEnd.Close()
	if err != nil {
		res.Error = fmt.Sprintf("starting %v: %v", args, err)
		return res, nil
	}
	waited := make(chan struct{})
	var ps *os.ProcessState
	go func() { ps, _ = p.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		// The sensor kills the probe's process group and still records; if it does not end, it is killed.
		p.Signal(sensor.KillSignal)
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			p.Signal(unix.SIGKILL)
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res.Error = fmt.Sprintf("timed out after %s (%s)", timeout, limit)
		} else {
			res.Error = ctx.Err().Error()
		}
	}
	if ps != nil {
		res.ExitCode = ps.ExitCode()
	}
	res.OutputSize, res.OutputSHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	rec, rerr := rr.wait(recordWait)
	if rerr != nil && res.Error == "" {
		res.Error = rerr.Error()
	}
	if rec != nil {
		res.ExitCode = rec.ExitCode
	}
	return res, rec
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Exited reports whether the sandbox's process has exited.
func (s *Sandbox) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Done is closed when the sandbox's process exits.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// Stop asks the app to stop with sig (the sensor forwards it) and waits up to grace; an app still running
// then is killed, with every process it started, by the sensor, which still writes its record. It returns
// the exit code and whether the app had to be killed.
func (s *Sandbox) Stop(sig os.Signal, grace time.Duration) (code int, killed bool, err error) {
	if !s.Exited() {
		s.Signal(sig)
		select {
		case <-s.done:
		case <-time.After(grace):
			killed = true
			if s.control != nil {
				s.Signal(sensor.KillSignal)
			} else {
				s.container.Signal(unix.SIGKILL)
			}
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				s.container.Signal(unix.SIGKILL)
			}
		}
	}
	code, err = s.Wait(context.Background())
	return code, killed, err
}
