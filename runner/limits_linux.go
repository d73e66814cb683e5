package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Limits bound what the app in a sandbox may use, with docker's flag names. As root they are cgroup limits
// (memory, pids, cpu) and a tmpfs of WritableSize under the overlay's upper directory; rootless, where no
// cgroup is delegated, rlimits of each process (RLIMIT_DATA for memory, RLIMIT_NPROC for processes,
// RLIMIT_FSIZE for one written file) and nothing for the CPU.
type Limits struct {
	// Memory in bytes (--memory); 0 means DefaultMemory().
	Memory int64
	// Pids is the most processes and threads (--pids-limit); 0 means DefaultPids.
	Pids int64
	// CPUs (--cpus), as a number of CPUs; 0 means no limit, as docker's.
	CPUs float64
	// WritableSize bounds what the app writes to its root filesystem (--writable-size); 0 means
	// DefaultWritableSize.
	WritableSize int64
}

// DefaultPids is podman's default pids limit times two (Java and node start dozens of threads).
const DefaultPids = 4096

// DefaultWritableSize bounds the writable layer when Limits.WritableSize is 0.
const DefaultWritableSize = 1 << 30

// DefaultMemory is a quarter of the machine's RAM, at most 4 GiB: well under what the host has, and more
// than the samples use (Java's JVM: 150 MB).
func DefaultMemory() int64 {
	const most = 4 << 30
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return most
	}
	return min(most, int64(si.Totalram)*int64(si.Unit)/4)
}

func (l Limits) fill() Limits {
	if l.Memory <= 0 {
		l.Memory = DefaultMemory()
	}
	if l.Pids <= 0 {
		l.Pids = DefaultPids
	}
	if l.WritableSize <= 0 {
		l.WritableSize = DefaultWritableSize
	}
	return l
}

// apply sets the cgroup limits (root) in r.
func (l Limits) apply(r *specs.LinuxResources) {
	mem, pids := l.Memory, l.Pids
	// Swap counts with memory: the app gets no more than Memory in all.
	r.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &mem}
	r.Pids = &specs.LinuxPids{Limit: &pids}
	if l.CPUs > 0 {
		period := uint64(100000)
		quota := int64(l.CPUs * float64(period))
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
}

// rlimits are every sandbox's open-files limit (docker's 1048576, or slimoci's own hard limit when lower:
// raising it needs CAP_SYS_RESOURCE) and, rootless, the limits standing in for the cgroup's.
func (l Limits) rlimits(rootless bool) []configs.Rlimit {
	out := []configs.Rlimit{{Type: unix.RLIMIT_NOFILE, Hard: nofile(), Soft: nofile()}}
	if rootless {
		out = append(out,
			configs.Rlimit{Type: unix.RLIMIT_NPROC, Hard: uint64(l.Pids), Soft: uint64(l.Pids)},
			configs.Rlimit{Type: unix.RLIMIT_DATA, Hard: uint64(l.Memory), Soft: uint64(l.Memory)},
			configs.Rlimit{Type: unix.RLIMIT_FSIZE, Hard: uint64(l.WritableSize), Soft: uint64(l.WritableSize)},
		)
	}
	return out
}

// ParseSize reads a docker size: 512m, 2g, 1GiB, or bytes.
func ParseSize(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--%s %q: want a size such as 512m or 2g", flag, s)
	}
	return n, nil
}

// hits reads, before the sandbox is destroyed, which limits the app ran into: the cgroup's OOM kills and
// refused forks (root), a full writable layer. Rootless, the app meets its rlimits as errors of its own
// and nothing is counted.
func (s *Sandbox) hits() []string {
	var out []string
	if s.container != nil && !s.rootless {
		if st, err := s.container.State(); err == nil {
			paths := st.CgroupPaths
			if n := cgroupCount(filepath.Join(paths["memory"], "memory.oom_control"), "oom_kill"); n > 0 {
				out = append(out, fmt.Sprintf("memory (--memory %s): %d killed by the OOM killer", units.BytesSize(float64(s.limits.Memory)), n))
			} else if n := cgroupCount(filepath.Join(paths[""], "memory.events"), "oom_kill"); n > 0 {
				out = append(out, fmt.Sprintf("memory (--memory %s): %d killed by the OOM killer", units.BytesSize(float64(s.limits.Memory)), n))
			}
			pids := paths["pids"]
			if pids == "" {
				pids = paths[""]
			}
			if n := cgroupCount(filepath.Join(pids, "pids.events"), "max"); n > 0 {
				out = append(out, fmt.Sprintf("processes (--pids-limit %d): %d forks refused", s.limits.Pids, n))
			}
		}
	}
	if s.rw != "" {
		var st unix.Statfs_t
		if err := unix.Statfs(s.rw, &st); err == nil && st.Bavail*uint64(st.Bsize) < 1<<20 {
			out = append(out, fmt.Sprintf("writable layer (--writable-size %s): full", units.BytesSize(float64(s.limits.WritableSize))))
		}
	}
	return out
}

// cgroupCount reads "key N" from a cgroup file of such lines; 0 when absent.
func cgroupCount(file, key string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// limitError is ErrLimit naming what was hit, or nil.
func limitError(hits []string) error {
	if len(hits) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrLimit, strings.Join(hits, "; "))
}
