package rootfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// Why a path is kept. A path may have several reasons; each names what caused it.
const (
	ReasonObserved    = "observed"     // the app used it: observed (open, exec, ...)
	ReasonSymlink     = "symlink"      // a symlink on the way to a kept path
	ReasonLinkTarget  = "link-target"  // what a kept symlink points to
	ReasonParent      = "parent"       // a directory above a kept path
	ReasonELFInterp   = "elf-interp"   // the ELF interpreter of a kept executable
	ReasonELFNeeded   = "elf-needed"   // a DT_NEEDED library of a kept ELF file
	ReasonDlopen      = "dlopen"       // what glibc loads itself: libgcc_s, NSS modules
	ReasonIdentity    = "identity"     // users and groups: /etc/passwd, /etc/group, /etc/nsswitch.conf
	ReasonCerts       = "certificates" // CA certificate bundles and directories
	ReasonPySource    = "python-source"
	ReasonPyMetadata  = "python-metadata"
	ReasonIncluded    = "included" // --include-path
	ReasonShell       = "shell"    // --include-shell
	ReasonWorkdir     = "workdir"
	ReasonVerify      = "verify" // looked up and missed by the slim image's run, added back
	ReasonMissingNear = "near-missing"
)

// ClosureOptions say what to keep besides what the app was seen using.
type ClosureOptions struct {
	// Observed maps the paths the sensor recorded to their ops ("open", "exec", "stat", ..., "missing").
	Observed map[string][]string
	// Include and Exclude are --include-path and --exclude-path globs (absolute; see Match). An included
	// directory is kept whole; an excluded path, and what is under it, is dropped whatever else says (the
	// runtime's mount points excepted).
	Include, Exclude []string
	// IncludeShell keeps /bin/sh and its closure.
	IncludeShell bool
	// Certs keeps CA certificate bundles and directories.
	Certs bool
	// Workdir, Env: the image's WORKDIR (kept) and environment (LD_LIBRARY_PATH is searched).
	Workdir string
	Env     []string
	// Extra adds paths with a reason (what verify found missing).
	Extra map[string]string
	// Keep is what the keep flags ask for besides (see keep.go).
	Keep KeepOptions
}

// Closure is what a slim image keeps: every path with why.
type Closure struct {
	// Keep maps each kept path (as in the index: resolved, no symlink on its way) to its reasons.
	Keep map[string][]string
	// MissingLibs lists DT_NEEDED libraries found nowhere: "libfoo.so.1 (needed by /usr/bin/x)".
	MissingLibs []string
	// Excluded lists kept paths --exclude-path dropped.
	Excluded []string
	// Unreadable lists the files the closure could not analyze, with why ("/usr/lib/x.so: invalid ELF
	// file: ..."): a malformed ELF file or ld.so.cache, one larger than ld.so would read, one the unpack left
	// unreadable. They are kept all the same, but what they need may be missing.
	Unreadable []string
}

// identityPaths let the image's USER and name lookups keep working.
var identityPaths = []string{"/etc/passwd", "/etc/group", "/etc/nsswitch.conf"}

// ComputeClosure decides what a slim image of t keeps.
func (t *Tree) ComputeClosure(o ClosureOptions) (*Closure, error) {
	c := &closure{tree: t, ix: t.Index, out: &Closure{Keep: map[string][]string{}}, elfDone: map[string]bool{}, pyDone: map[string]bool{}}
	if t.Config != nil {
		c.platform = archOfPlatform(t.Config.Architecture, t.Config.Variant)
	}
	if b, err := t.ReadFile("/etc/ld.so.cache"); err != nil {
		c.failed(err)
	} else if c.ldcache, err = ParseLDCache(b); err != nil {
		c.unreadable("/etc/ld.so.cache", err)
	}
	for _, e := range o.Env {
		if v, ok := strings.CutPrefix(e, "LD_LIBRARY_PATH="); ok {
			c.ldPath = strings.Split(v, ":")
		}
	}
	names := make([]string, 0, len(o.Observed))
	for p := range o.Observed {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		ops := o.Observed[p]
		if kernelPath(p) {
			continue
		}
		if removedOnly(ops) {
			// What the app only removed is not baked in; the directory it was in is.
			c.nearest(p)
			continue
		}
		why := ReasonObserved + ":" + strings.Join(ops, ",")
		if !c.keep(p, why, false) {
			c.nearest(p)
		}
	}
	for _, p := range identityPaths {
		c.keep(p, ReasonIdentity, false)
	}
	c.certs(o)
	if o.Workdir != "" {
		c.keep(o.Workdir, ReasonWorkdir, false)
	}
	if o.IncludeShell {
		c.keep("/bin/sh", ReasonShell, false)
	}
	for p, why := range o.Extra {
		c.keep(p, why, false)
	}
	for _, g := range o.Include {
		matched := false
		t.Index.Walk(func(e *Entry) error {
			if Match(g, e.Path) {
				matched = true
				c.keep(e.Path, ReasonIncluded+":"+g, true)
			}
			return nil
		})
		if !matched {
			// A path through a symlink, or a glob that matches nothing in the index: try it as a name.
			c.keep(g, ReasonIncluded+":"+g, true)
		}
	}
	c.keepOptions(o)
	c.drain()
	c.dlopened()
	c.drain()
	c.appCerts(o)
	c.drain()
	if len(o.Exclude) > 0 || o.Keep.ExcludeVarLock {
		for p := range c.out.Keep {
			if excluded(p, o.Exclude) || (o.Keep.ExcludeVarLock && lockFile(p)) {
				delete(c.out.Keep, p)
				c.out.Excluded = append(c.out.Excluded, p)
			}
		}
		sort.Strings(c.out.Excluded)
	}
	for p, r := range c.out.Keep {
		sort.Strings(r)
		c.out.Keep[p] = slices.Compact(r)
	}
	sort.Strings(c.out.MissingLibs)
	sort.Strings(c.out.Unreadable)
	c.out.Unreadable = slices.Compact(c.out.Unreadable)
	if c.err != nil {
		return nil, c.err
	}
	return c.out, nil
}

// removedOnly says the app did nothing with a path but remove it (unlink, rmdir; "missing" is what the
// sensor found after). Every other op keeps a path the image has: created over (mkdir, bind, rename-to on a
// name that exists fails or replaces there as in the image), entered, watched, changed (chmod, truncate) or
// read; and a path the image lacks keeps the directory it would be in (nearest), with its owner and mode.
func removedOnly(ops []string) bool {
	removed := false
	for _, op := range ops {
		switch op {
		case "unlink", "rmdir":
			removed = true
		case "missing":
		default:
			return false
		}
	}
	return removed
}

func kernelPath(p string) bool {
	for _, d := range []string{"/proc", "/sys", "/dev"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func excluded(p string, globs []string) bool {
	for _, g := range globs {
		for q := p; ; q = path.Dir(q) {
			if Match(g, q) {
				return true
			}
			if q == "/" {
				break
			}
		}
	}
	return false
}

type closure struct {
	tree    *Tree
	ix      *Index
	out     *Closure
	ldcache map[string][]LDCacheEntry
	ldPath  []string
	// platform is the architecture the image config names (nil: none the closure knows): it decides only
	// what no ELF header does (see archOf).
	platform *arch
	queue    []string
	elfDone  map[string]bool
	pyDone   map[string]bool
	// err is the first file of the tree that is not what a closure can read at all (see failed).
	err error
}

// failed records an error reading a file of the tree. A file that is missing is no error (what needs it
// will find nothing); one that is not a regular file, or is larger than slimoci reads, fails the closure: the
// tree was made to attack its reader. Anything else (a file the unpack left unreadable) is listed in
// Unreadable.
func (c *closure) failed(err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, ErrNotRegular), errors.Is(err, ErrTooLarge):
		if c.err == nil {
			c.err = err
		}
	default:
		c.out.Unreadable = append(c.out.Unreadable, err.Error())
	}
}

// unreadable records that the file p was read but not understood (a malformed ELF file or ld.so.cache).
func (c *closure) unreadable(p string, err error) {
	c.out.Unreadable = append(c.out.Unreadable, p+": "+err.Error())
}

// keep keeps the path p names (resolved through the index's symlinks, each kept too), the directories above
// it, and, when whole is set and it is a directory, everything under it. It reports whether p exists.
func (c *closure) keep(p, why string, whole bool) bool {
	p = path.Clean("/" + p)
	real, err := c.ix.resolve(p, true, func(link string) {
		if link == p {
			c.add(link, why) // the name itself is a symlink: it is what was used
		} else {
			c.add(link, ReasonSymlink+":"+p)
		}
	})
	if err != nil {
		return false
	}
	e, ok := c.ix.Lookup(real)
	if !ok {
		return false
	}
	c.add(real, why)
	if e.Type == TypeDir && whole {
		c.ix.Walk(func(d *Entry) error {
			if strings.HasPrefix(d.Path, real+"/") {
				if d.Type == TypeSymlink {
					c.keep(d.Path, why, false)
				} else {
					c.add(d.Path, why)
				}
			}
			return nil
		})
	}
	return true
}

// nearest keeps the deepest existing directory above p (a file the app looked for, or created: the
// directory it expected must be there, with its mode, such as /tmp's 1777).
func (c *closure) nearest(p string) {
	for q := path.Dir(path.Clean("/" + p)); q != "/"; q = path.Dir(q) {
		real, err := c.ix.resolve(q, true, nil)
		if err != nil {
			return
		}
		if e, ok := c.ix.Lookup(real); ok {
			if e.Type == TypeDir {
				c.keep(q, ReasonMissingNear+":"+p, false)
			}
			return
		}
	}
}

// add records p (an index path) with why, and its parents; a file is queued for analysis the first time.
func (c *closure) add(p, why string) {
	e, ok := c.ix.Lookup(p)
	if !ok {
		return
	}
	first := c.out.Keep[p] == nil
	c.out.Keep[p] = append(c.out.Keep[p], why)
	if !first {
		return
	}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if c.out.Keep[d] != nil {
			break
		}
		if _, ok := c.ix.Lookup(d); ok {
			c.out.Keep[d] = []string{ReasonParent}
		}
		if d == "/" {
			break
		}
	}
	switch e.Type {
	case TypeFile:
		c.queue = append(c.queue, p)
	case TypeSymlink:
		c.keep(p, ReasonLinkTarget+":"+p, false)
	}
}

func (c *closure) drain() {
	for len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		c.analyze(p)
	}
}

// dlopened keeps what glibc loads at run time without a DT_NEEDED, when the image's libc is kept:
// libgcc_s.so.1 (for thread cancellation and unwinding; whether a short run needed it depends on timing) and
// the NSS modules /etc/nsswitch.conf names. An image with several architectures' libc kept (Debian multiarch:
// amd64 and i386) keeps them for each, as that libc's architecture finds them.
func (c *closure) dlopened() {
	var libcs []string
	for p := range c.out.Keep {
		if path.Base(p) == "libc.so.6" {
			libcs = append(libcs, p)
		}
	}
	if len(libcs) == 0 {
		return
	}
	sort.Strings(libcs)
	libs := []string{"libgcc_s.so.1"}
	if b, err := c.tree.ReadFile("/etc/nsswitch.conf"); err != nil {
		c.failed(err)
	} else {
		seen := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			line, _, _ = strings.Cut(line, "#")
			db, services, ok := strings.Cut(line, ":")
			if !ok || (strings.TrimSpace(db) != "passwd" && strings.TrimSpace(db) != "group" && strings.TrimSpace(db) != "hosts") {
				continue
			}
			for _, s := range strings.Fields(services) {
				if !strings.HasPrefix(s, "[") && !seen[s] {
					seen[s] = true
					libs = append(libs, "libnss_"+s+".so.2")
				}
			}
		}
	}
	for _, libc := range libcs {
		f, err := c.tree.Open(libc)
		if err != nil {
			c.failed(err)
			continue
		}
		h, err := readELFHeader(f)
		f.Close()
		if err != nil {
			c.unreadable(libc, err)
			continue
		}
		a := archOf(h, c.platform)
		for _, lib := range libs {
			c.findLib(lib, c.libraryPath(a), a, ReasonDlopen+":"+libc)
		}
	}
}

// analyze adds what a kept file needs: an ELF file's interpreter and libraries, a .pyc's source and the
// metadata of the Python package it belongs to.
func (c *closure) analyze(p string) {
	if strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".py") || strings.Contains(p, "-packages/") {
		c.python(p)
	}
	e, _ := c.ix.Lookup(p)
	if e == nil || e.Size < 64 || c.elfDone[p] {
		return
	}
	c.elfDone[p] = true
	f, err := c.tree.Open(p)
	if err != nil {
		c.failed(err)
		return
	}
	magic := make([]byte, 4)
	if n, _ := f.ReadAt(magic, 0); n < 4 || string(magic) != elf.ELFMAG {
		f.Close()
		return
	}
	ef, err := readELF(f)
	f.Close()
	if err != nil {
		c.unreadable(p, err)
		return
	}
	if ef.Interp != "" {
		c.keep(ef.Interp, ReasonELFInterp+":"+p, false)
	}
	needed, rpath, runpath := ef.Needed, ef.RPath, ef.RunPath
	if len(needed) == 0 {
		return
	}
	// What the libraries must be, and where they are looked for, is the needing file's architecture's.
	a := archOf(ef.header(), c.platform)
	origin := path.Dir(p)
	expand := func(list []string) [][]string {
		var steps [][]string
		for _, l := range list {
			for _, d := range strings.Split(l, ":") {
				if dirs := a.expand(d, origin); d != "" && len(dirs) > 0 {
					steps = append(steps, dirs)
				}
			}
		}
		return steps
	}
	// ld.so's order: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, ld.so.cache, the
	// default directories.
	var dirs [][]string
	if len(runpath) == 0 {
		dirs = append(dirs, expand(rpath)...)
	}
	dirs = append(dirs, c.libraryPath(a)...)
	dirs = append(dirs, expand(runpath)...)
	for _, lib := range needed {
		if strings.Contains(lib, "/") {
			if !c.keep(lib, ReasonELFNeeded+":"+p, false) {
				c.out.MissingLibs = append(c.out.MissingLibs, fmt.Sprintf("%s (needed by %s)", lib, p))
			}
			continue
		}
		if !c.findLib(lib, dirs, a, ReasonELFNeeded+":"+p) {
			c.out.MissingLibs = append(c.out.MissingLibs, fmt.Sprintf("%s (needed by %s)", lib, p))
		}
	}
}

// libraryPath is LD_LIBRARY_PATH as a's ld.so reads it: its $LIB and $PLATFORM expanded ($ORIGIN, the
// executable's directory, is not known here: such an element is dropped).
func (c *closure) libraryPath(a *arch) [][]string {
	var steps [][]string
	for _, d := range c.ldPath {
		if dirs := a.expand(d, ""); d != "" && len(dirs) > 0 {
			steps = append(steps, dirs)
		}
	}
	return steps
}

// findLib keeps lib as a's ld.so finds it: in the first of steps (each a directory, or the directories one
// search path element may stand for), the ld.so.cache, then a's default directories, the first whose file a's
// ld.so loads (see arch.accepts). Where the closure cannot know which file ld.so takes at run time, because
// that depends on the CPU or on the glibc build, it keeps each: the directories $PLATFORM (the CPU's) and
// $LIB (the build's) may stand for, the glibc-hwcaps subdirectories of a directory and the cache's entries
// for CPUs with some capabilities. The slim image runs where the observed run did not.
func (c *closure) findLib(lib string, steps [][]string, a *arch, why string) bool {
	found := false
	keep := func(p string) {
		c.keep(p, why, false)
		found = true
	}
	// dir keeps lib from d's glibc-hwcaps subdirectories and from d, and says whether d has it: a CPU
	// without the subdirectories' capabilities goes on to the next directory otherwise.
	dir := func(d string) bool {
		for _, h := range a.hwcaps {
			if p := path.Join(d, "glibc-hwcaps", h, lib); c.matches(p, a) {
				keep(p)
			}
		}
		if p := path.Join(d, lib); c.matches(p, a) {
			keep(p)
			return true
		}
		return false
	}
	for _, dirs := range steps {
		has := false
		for _, d := range dirs {
			has = dir(d) || has
		}
		if has {
			return true
		}
	}
	// ld.so takes the cache's first baseline entry of its ABI; the hwcaps entries before it win on a CPU
	// that has their capabilities.
	for _, e := range c.ldcache[lib] {
		if a.cacheTakes(e.Flags) && c.matches(e.Path, a) {
			keep(e.Path)
			if e.HWCap == 0 {
				return true
			}
		}
	}
	for _, d := range a.dirs {
		if dir(d) {
			return true
		}
	}
	return found
}

// matches reports whether the file at p (through symlinks) is an ELF file a's ld.so loads. Only its file
// header is read.
func (c *closure) matches(p string, a *arch) bool {
	real, err := c.ix.Resolve(p, true)
	if err != nil {
		return false
	}
	if e, ok := c.ix.Lookup(real); !ok || e.Type != TypeFile {
		return false
	}
	f, err := c.tree.Open(real)
	if err != nil {
		c.failed(err)
		return false
	}
	defer f.Close()
	h, err := readELFHeader(f)
	return err == nil && a.accepts(h)
}

// python keeps the .py beside an observed .pyc, and the *.dist-info / *.egg-info of the package a kept
// file belongs to.
func (c *closure) python(p string) {
	dir, name := path.Split(p)
	if strings.HasSuffix(name, ".pyc") {
		mod := strings.TrimSuffix(name, ".pyc")
		src := path.Join(dir, mod+".py")
		if path.Base(path.Clean(dir)) == "__pycache__" {
			if i := strings.Index(mod, "."); i >= 0 {
				mod = mod[:i]
			}
			src = path.Join(path.Dir(path.Clean(dir)), mod+".py")
		}
		c.keep(src, ReasonPySource+":"+p, false)
	}
	i := strings.Index(p, "-packages/")
	if i < 0 {
		return
	}
	pkgDir := p[:i+len("-packages")]
	top, _, _ := strings.Cut(p[i+len("-packages/"):], "/")
	if strings.HasSuffix(top, ".dist-info") || strings.HasSuffix(top, ".egg-info") || top == "__pycache__" {
		return
	}
	top = strings.TrimSuffix(top, ".py")
	if j := strings.Index(top, "."); j >= 0 && strings.HasSuffix(top, ".so") {
		top = top[:j]
	}
	key := pkgDir + "/" + top
	if c.pyDone[key] {
		return
	}
	c.pyDone[key] = true
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "_", ".", "_").Replace(s)) }
	for _, child := range c.ix.Children(pkgDir) {
		if !strings.HasSuffix(child, ".dist-info") && !strings.HasSuffix(child, ".egg-info") {
			continue
		}
		dist, _, _ := strings.Cut(child, "-")
		match := norm(dist) == norm(top)
		if !match {
			match = c.topLevel(path.Join(pkgDir, child, "top_level.txt"), top)
		}
		if match {
			c.keep(path.Join(pkgDir, child), ReasonPyMetadata+":"+top, true)
		}
	}
}

// topLevel reports whether a dist-info's top_level.txt names the module top.
func (c *closure) topLevel(p, top string) bool {
	b, err := c.tree.ReadFile(p)
	if err != nil {
		c.failed(err)
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == top {
			return true
		}
	}
	return false
}
