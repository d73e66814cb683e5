package main

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// syscallInfo is one syscall of one architecture, with the arguments that name files.
type syscallInfo struct {
	nr    uint32
	name  string
	fn    string // the entry point whose prototype was read
	since string // the supplement's kernel version; "" when read from the source
	args  []pathArg
}

// pathArg mirrors the sensor's pathArg; kind is the name of its constant.
type pathArg struct {
	arg, dirfd, flags, len int
	kind, op               string
}

// tables is what the generator writes.
type tables struct {
	version string // the source's kernel version
	newest  string // the newest kernel version a supplement entry came in
	// arches are the syscalls of each of archSpecs, by its name; only those with paths set have their
	// arguments decoded.
	arches map[string][]syscallInfo
}

// archSpec says how to read one architecture from its table.
type archSpec struct {
	name  string // GOARCH ("386" is i386)
	table string
	abis  []string // the table's ABIs the architecture's kernel builds (its Makefile's --abis)
	// compat: a process of this architecture reaches the compat entry point where the table has one (i386
	// on an x86_64 kernel).
	compat bool
	// paths: which arguments name files is decoded, from the prototypes of the generic C files and those of
	// arch/dir.
	paths bool
	dir   string
}

// archSpecs are the architectures the generator reads, with the ABIs their Makefiles select in 6.12:
// x86's syscall_64.tbl without the x32 lines; arm64 and riscv the generic table's with their
// Makefile.syscalls' additions (arch/*/kernel/Makefile.syscalls, on top of scripts/Makefile.asm-headers'
// "common,64"); 32-bit arm its EABI (arch/arm/tools/Makefile: "common,eabi", not OABI's old calls);
// powerpc its 64-bit non-SPU ones (arch/powerpc/kernel/syscalls/Makefile's unistd_64.h); s390's 64-bit
// ones (arch/s390/kernel/syscalls/Makefile). ppc64le and ppc64 share the table; Go calls the one Debian
// ships ppc64le.
var archSpecs = []archSpec{
	amd64Spec,
	i386Spec,
	{name: "arm64", table: tableGeneric, abis: []string{"common", "64", "renameat", "rlimit", "memfd_secret"}, paths: true, dir: "arm64"},
	{name: "arm", table: tableARM, abis: []string{"common", "eabi"}},
	{name: "ppc64le", table: tablePPC, abis: []string{"common", "nospu", "64"}},
	{name: "s390x", table: tableS390, abis: []string{"common", "64"}},
	{name: "riscv64", table: tableGeneric, abis: []string{"common", "64", "riscv", "rlimit", "memfd_secret"}},
}

var (
	amd64Spec = archSpec{name: "amd64", table: table64, abis: []string{"common", "64"}, paths: true, dir: "x86"} // x32's lines are another ABI
	i386Spec  = archSpec{name: "386", table: table32, abis: []string{"i386"}, compat: true, paths: true, dir: "x86"}
)

// generator holds the prototypes and what of the rules was used, to report the unused ones.
type generator struct {
	headers, defines map[string][]proto
	used             map[string]bool // "op:"+target, "exc:"+call+"."+param, "flags:"+call+"."+param
	errs             []string
}

func (g *generator) errorf(format string, a ...any) {
	g.errs = append(g.errs, fmt.Sprintf(format, a...))
}

func generate(t *kernelTree) (*tables, error) {
	version, err := t.version()
	if err != nil {
		return nil, err
	}
	g := &generator{headers: map[string][]proto{}, defines: map[string][]proto{}, used: map[string]bool{}}
	for _, h := range []string{syscallsH, compatH} {
		for _, p := range parseHeader(h, t.files[h]) {
			g.headers[p.fn] = append(g.headers[p.fn], p)
		}
	}
	var cFiles []string
	for f := range t.files {
		if strings.HasSuffix(f, ".c") {
			cFiles = append(cFiles, f)
		}
	}
	sort.Strings(cFiles)
	for _, f := range cFiles {
		ps, err := parseDefines(f, t.files[f])
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			g.defines[p.fn] = append(g.defines[p.fn], p)
		}
	}
	out := &tables{version: version, arches: map[string][]syscallInfo{}}
	for _, spec := range archSpecs {
		entries, err := parseTable(spec.table, t.files[spec.table], spec.abis...)
		if err != nil {
			return nil, err
		}
		entries, since, err := g.supplemented(spec, entries)
		if err != nil {
			return nil, err
		}
		out.arches[spec.name] = g.arch(spec, entries, since)
	}
	for _, s := range supplement {
		if out.newest == "" || versionLess(out.newest, s.since) {
			out.newest = s.since
		}
	}
	g.unused()
	if len(g.errs) > 0 {
		return nil, errors.New(strings.Join(g.errs, "\n"))
	}
	return out, nil
}

// supplemented adds the supplement's syscalls the table lacks, and their prototypes where the source has
// none; since says which came from it.
func (g *generator) supplemented(spec archSpec, entries []tableEntry) ([]tableEntry, map[string]string, error) {
	byName := map[string]tableEntry{}
	for _, e := range entries {
		byName[e.name] = e
	}
	since := map[string]string{}
	for _, s := range supplement {
		if s.arches != nil && !slices.Contains(s.arches, spec.name) {
			continue
		}
		nr := s.nr
		if e, ok := byName[s.name]; ok {
			if e.nr != uint32(nr) {
				return nil, nil, fmt.Errorf("supplement: %s is %d on %s, the source's table says %d", s.name, nr, spec.name, e.nr)
			}
			continue
		}
		fn := "sys_" + s.name
		entries = append(entries, tableEntry{nr: uint32(nr), abi: spec.abis[0], name: s.name, native: fn})
		since[s.name] = s.since
		if spec.paths && len(g.headers[fn]) == 0 && len(g.defines[fn]) == 0 {
			ps := parseHeader("supplement", []byte(s.proto))
			if len(ps) != 1 || ps[0].fn != fn {
				return nil, nil, fmt.Errorf("supplement: %s: want one prototype of %s, got %q", s.name, fn, s.proto)
			}
			g.headers[fn] = ps
		}
	}
	seen := map[uint32]string{}
	for _, e := range entries {
		if other, ok := seen[e.nr]; ok {
			return nil, nil, fmt.Errorf("%s: %s and %s are both number %d", spec.table, other, e.name, e.nr)
		}
		seen[e.nr] = e.name
	}
	slices.SortFunc(entries, func(a, b tableEntry) int { return int(a.nr) - int(b.nr) })
	return entries, since, nil
}

// arch decides the path arguments of every syscall of one architecture.
func (g *generator) arch(spec archSpec, entries []tableEntry, since map[string]string) []syscallInfo {
	var out []syscallInfo
	for _, e := range entries {
		s := syscallInfo{nr: e.nr, name: e.name, fn: e.native, since: since[e.name]}
		if spec.compat && e.compat != "" {
			s.fn = e.compat
		}
		if spec.paths && s.fn != "" && s.fn != "sys_ni_syscall" {
			p, ok := g.proto(spec, e.name, s.fn)
			if ok {
				s.args = g.pathArgs(spec, e.name, p)
				s.args = append(s.args, g.special(spec, e.name, p)...)
			}
		}
		out = append(out, s)
	}
	return out
}

// proto is the prototype of fn: its definition (SYSCALL_DEFINEn, which always names its parameters) in a
// generic file or one of the architecture's, else its header prototype. There may be several, for other
// configurations (#ifdef): those of the chosen kind must agree on which parameters are `char __user *`.
func (g *generator) proto(spec archSpec, name, fn string) (proto, bool) {
	var all []proto
	for _, p := range g.defines[fn] {
		if !strings.HasPrefix(p.where, "arch/") || strings.HasPrefix(p.where, "arch/"+spec.dir+"/") {
			all = append(all, p)
		}
	}
	if len(all) == 0 {
		all = g.headers[fn]
	}
	if len(all) == 0 {
		g.errorf("%s %s: no prototype or definition of %s", spec.name, name, fn)
		return proto{}, false
	}
	charPtrs := func(p proto) string {
		var idx []string
		for i, a := range p.params {
			if a.isCharPtr() {
				idx = append(idx, strconv.Itoa(i))
			}
		}
		return strings.Join(idx, ",")
	}
	for _, p := range all[1:] {
		if charPtrs(p) != charPtrs(all[0]) {
			g.errorf("%s %s: %s at %s and %s disagree on which parameters are char __user *", spec.name, name, fn, all[0].where, p.where)
		}
	}
	return all[0], true
}

// pathArgs are the `char __user *` parameters of p that name files, by the rules.
func (g *generator) pathArgs(spec archSpec, name string, p proto) []pathArg {
	var out []pathArg
	for i, a := range p.params {
		if !a.isCharPtr() || !g.isPath(spec, name, p, a) {
			continue
		}
		pa := pathArg{arg: i, kind: "argPath", dirfd: -1, flags: -1, len: -1}
		key := name + "." + a.name
		if i > 0 && dirfdParams[p.params[i-1].name] {
			g.used["dirfd:"+p.params[i-1].name] = true
			pa.dirfd = i - 1
		}
		if d, ok := dirfdExceptions[key]; ok {
			g.used["dirfdexc:"+key] = true
			if pa.dirfd = index(p, d); pa.dirfd < 0 {
				g.errorf("%s %s: dirfdExceptions names %q, which %s (%s) has not", spec.name, key, d, p.fn, p.where)
			}
		}
		if f, ok := emptyPathFlags[key]; ok {
			g.used["flags:"+key] = true
			pa.flags = index(p, f)
			if pa.flags < 0 {
				g.errorf("%s %s: emptyPathFlags names %q, which %s (%s) has not", spec.name, key, f, p.fn, p.where)
			}
		}
		pa.op = g.op(spec, name, a.name, p)
		out = append(out, pa)
	}
	return out
}

// isPath applies the rules to the `char __user *` parameter a of syscall name.
func (g *generator) isPath(spec archSpec, name string, p proto, a param) bool {
	if a.name == "" {
		g.errorf("%s %s: %s (%s) leaves a char __user * parameter unnamed", spec.name, name, p.fn, p.where)
		return false
	}
	if v, ok := exceptions[name][a.name]; ok {
		g.used["exc:"+name+"."+a.name] = true
		return v
	}
	switch {
	case pathParams[a.name]:
		g.used["path:"+a.name] = true
		return true
	case notPathParams[a.name]:
		g.used["notpath:"+a.name] = true
		return false
	}
	g.errorf("%s %s: parameter %q of %s (%s) is a char __user *: add it to pathParams, notPathParams or exceptions", spec.name, name, a.name, p.fn, p.where)
	return false
}

// op is the ops entry for syscall name's parameter param: "name.param", else "name".
func (g *generator) op(spec archSpec, name, param string, p proto) string {
	for _, target := range []string{name + "." + param, name} {
		for _, o := range ops {
			if slices.Contains(o.calls, target) {
				g.used["op:"+target] = true
				return o.op
			}
		}
	}
	g.errorf("%s %s: its parameter %q (%s) names a file but has no op: add it to ops", spec.name, name, param, p.where)
	return ""
}

// special are the path arguments the rules add by name (see special).
func (g *generator) special(spec archSpec, name string, p proto) []pathArg {
	for _, s := range special {
		if s.name != name {
			continue
		}
		g.used["special:"+name] = true
		pa := pathArg{arg: index(p, s.arg), kind: "argFD", dirfd: -1, flags: -1, len: -1}
		if s.kind == "sockaddr" {
			pa.kind, pa.len = "argSockaddr", index(p, s.len)
			if pa.len < 0 {
				g.errorf("%s %s: special: %s (%s) has no parameter %q", spec.name, name, p.fn, p.where, s.len)
			}
		}
		if pa.arg < 0 || !strings.Contains(p.params[pa.arg].typ, s.argTypeIn) {
			g.errorf("%s %s: special: %s (%s) has no %s parameter %q", spec.name, name, p.fn, p.where, s.argTypeIn, s.arg)
			return nil
		}
		pa.op = g.op(spec, name, s.arg, p)
		return []pathArg{pa}
	}
	return nil
}

// unused reports the rules that matched nothing: a typo, or a syscall the kernel renamed.
func (g *generator) unused() {
	check := func(kind, key string) {
		if !g.used[kind+":"+key] {
			g.errorf("rules: %s %q matches no syscall parameter", kind, key)
		}
	}
	for _, o := range ops {
		for _, c := range o.calls {
			check("op", c)
		}
	}
	for call, params := range exceptions {
		for p := range params {
			check("exc", call+"."+p)
		}
	}
	for k := range emptyPathFlags {
		check("flags", k)
	}
	for k := range dirfdExceptions {
		check("dirfdexc", k)
	}
	for k := range pathParams {
		check("path", k)
	}
	for k := range notPathParams {
		check("notpath", k)
	}
	for k := range dirfdParams {
		check("dirfd", k)
	}
	for _, s := range special {
		check("special", s.name)
	}
	sort.Strings(g.errs)
}

func index(p proto, name string) int {
	for i, a := range p.params {
		if a.name == name {
			return i
		}
	}
	return -1
}

// versionLess compares kernel versions such as "6.9" and "6.13".
func versionLess(a, b string) bool {
	va, _ := parseVersion(a)
	vb, _ := parseVersion(b)
	return slices.Compare(va, vb) < 0
}
