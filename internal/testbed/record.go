package testbed

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/slimoci/slimoci/sensor"
)

// RecordDiff says how two sensor records differ in what a record is for: the files with their ops, the
// programs started with their parents (by order, as pids differ between runs), the exit code and the set
// of syscalls (not their counts, which follow timing). Files for which ignoreFile is true and the syscalls in
// ignoreSyscalls may differ. An empty result means the same record.
func RecordDiff(a, b *sensor.Record, ignoreFile func(string) bool, ignoreSyscalls []string) []string {
	var diffs []string
	if a.ExitCode != b.ExitCode {
		diffs = append(diffs, fmt.Sprintf("exit codes %d and %d", a.ExitCode, b.ExitCode))
	}
	paths := slices.Sorted(maps.Keys(a.Files))
	for p := range b.Files {
		if _, ok := a.Files[p]; !ok {
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		if !slices.Equal(a.Files[p], b.Files[p]) && (ignoreFile == nil || !ignoreFile(p)) {
			diffs = append(diffs, fmt.Sprintf("%s recorded as %v and %v", p, a.Files[p], b.Files[p]))
		}
	}
	if ea, eb := execShape(a), execShape(b); !slices.Equal(ea, eb) {
		diffs = append(diffs, fmt.Sprintf("execs\n\t%s\nand\n\t%s", strings.Join(ea, "\n\t"), strings.Join(eb, "\n\t")))
	}
	set := func(r *sensor.Record) []string {
		var s []string
		for name := range r.Syscalls {
			if !slices.Contains(ignoreSyscalls, name) {
				s = append(s, name)
			}
		}
		slices.Sort(s)
		return s
	}
	if sa, sb := set(a), set(b); !slices.Equal(sa, sb) {
		diffs = append(diffs, fmt.Sprintf("syscalls %v and %v", sa, sb))
	}
	if a.Dropped != 0 || b.Dropped != 0 {
		diffs = append(diffs, fmt.Sprintf("dropped %d and %d", a.Dropped, b.Dropped))
	}
	return diffs
}

// execShape renders execs without pids: each with the index of its parent's latest exec (-1: none, or a
// parent that forked without exec'ing).
func execShape(r *sensor.Record) []string {
	last := map[int]int{}
	var out []string
	for i, e := range r.Execs {
		parent, ok := last[e.PPID]
		if !ok {
			parent = -1
		}
		if prev, ok := last[e.PID]; ok {
			parent = prev // the same process exec'ing again
		}
		last[e.PID] = i
		out = append(out, e.Path+" | "+strings.Join(e.Argv, " ")+" | parent "+strconv.Itoa(parent))
	}
	return out
}
