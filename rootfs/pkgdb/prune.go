package pkgdb

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/slimoci/slimoci/rootfs"
)

// ReasonPackageDB is why Prune keeps a database file or metadata directory: the slim image's pruned
// package database, which scanners read.
const ReasonPackageDB = "package-db"

// Pruned is a package database cut down to what a slim image keeps.
type Pruned struct {
	// Keep maps the database paths the slim image needs besides the closure's (as the index has them) to
	// why: ReasonPackageDB for a database file or metadata directory, rootfs.ReasonParent for a directory
	// above one, rootfs.ReasonSymlink for a symlink on the way to one. Paths the closure keeps are listed
	// only when they are database files.
	Keep map[string]string
	// Replace maps kept regular files to the content the slim image gets instead of the tree's: the dpkg
	// status file with only the kept packages' stanzas, their .list, .md5sums and conffiles files, apk's
	// installed database, Python's RECORD files, each cut to the paths the slim image has.
	Replace map[string][]byte
	// Kept are the packages the pruned database lists (those with a kept file or symlink), in the Set's
	// order.
	Kept []*Package
}

// Prune cuts s's databases down to what a slim image of tree that keeps keep's paths (a closure's Keep:
// index paths) still has. A package is kept when the slim image has at least one of its files that is not
// a directory (a regular file or a symlink, as Set.Usage counts them; the language metadata Prune keeps
// counts for the system package that owns it). Then
//   - dpkg: the status file lists only the kept packages' stanzas, each byte for byte as it was and in its
//     order; info/PKG[:ARCH].list, .md5sums and .conffiles are cut to the paths the slim image has (in dpkg's
//     own spelling: /lib/x.so stays /lib/x.so where /lib is a symlink to /usr/lib); the package's other
//     info files (maintainer scripts, symbols, templates: see infoKept) and the dropped packages' are left
//     out. Beside them: info/format (it says how info files are named), arch, diversions and statoverride
//     (dpkg -S reads diversions), unchanged.
//     Not kept: available (dselect's list of what could be installed, which no query or scanner of
//     installed packages reads), the -old backups, locks, triggers, alternatives and updates (dpkg-query
//     needs none of them; measured with dpkg 1.21).
//   - apk: lib/apk/db/installed lists only the kept packages, each one's F: (with M:) and R: (with a: and
//     Z:) lines cut to the paths the slim image has; every other line is as it was.
//   - Python, node, Ruby, Java: the metadata of each kept package (its dist-info or egg-info, package.json,
//     gemspec) is kept whole, but for RECORD (and an egg's installed-files.txt): a file list like dpkg's,
//     cut the same way, so that what pip show -f and scanners that list a package's files name is there.
//
// The content is a function of the tree and keep alone, so slim images with it stay reproducible.
func (s *Set) Prune(tree *rootfs.Tree, keep map[string][]string) (*Pruned, error) {
	p := &pruner{tree: tree, ix: tree.Index, keep: keep, out: &Pruned{Keep: map[string]string{}, Replace: map[string][]byte{}}}
	kept := map[*Package]bool{}
	dbs := map[string][]*Package{}
	// First the language packages' metadata, kept whole: a system package may own it (Debian's
	// python3-flask owns Flask's dist-info), and then it has a file in the slim image too.
	var cuts []func() error
	for _, pkg := range s.Packages {
		switch {
		case pkg.Type == Deb || pkg.Type == Apk:
			dbs[pkg.DB] = append(dbs[pkg.DB], pkg)
		case p.hasKeptFile(pkg):
			kept[pkg] = true
			c, err := p.metadata(pkg)
			if err != nil {
				return nil, fmt.Errorf("pruning %s: %w", pkg.DB, err)
			}
			cuts = append(cuts, c...)
		}
	}
	names := make([]string, 0, len(dbs))
	for db := range dbs {
		names = append(names, db)
	}
	sort.Strings(names)
	for _, db := range names {
		pkgs := dbs[db]
		for _, pkg := range pkgs {
			kept[pkg] = p.hasKeptFile(pkg)
		}
		var c []func() error
		var err error
		switch pkgs[0].Type {
		case Deb:
			c, err = p.dpkg(db, pkgs, kept)
		case Apk:
			c, err = p.apk(db, pkgs, kept)
		}
		if err != nil {
			return nil, fmt.Errorf("pruning %s: %w", db, err)
		}
		cuts = append(cuts, c...)
	}
	for _, pkg := range s.Packages {
		if kept[pkg] {
			p.out.Kept = append(p.out.Kept, pkg)
		}
	}
	// Then the cut lists, once everything kept is known: a list names what the slim image has, database
	// files too.
	for _, cut := range cuts {
		if err := cut(); err != nil {
			return nil, err
		}
	}
	return p.out, nil
}

type pruner struct {
	tree *rootfs.Tree
	ix   *rootfs.Index
	keep map[string][]string
	out  *Pruned
}

// hasKeptFile reports whether the slim image has a file of pkg that is not a directory (a regular file,
// a symlink: a directory alone does not keep a package), as Set.Usage counts them.
func (p *pruner) hasKeptFile(pkg *Package) bool {
	for _, f := range pkg.Files {
		if e, ok := p.ix.Lookup(f); ok && e.Type != rootfs.TypeDir && p.inImage(f) {
			return true
		}
	}
	return false
}

// inImage reports whether the slim image has the index path q: the closure keeps it, or Prune does.
func (p *pruner) inImage(q string) bool {
	if q == "/" {
		return true
	}
	if _, ok := p.ix.Lookup(q); !ok {
		return false
	}
	_, ok := p.out.Keep[q]
	return ok || p.keep[q] != nil
}

// has reports whether the slim image has the file a database lists, resolved as the package tool would:
// the symlinked directories on its way followed, the last component not.
func (p *pruner) has(listed string) bool {
	r, err := p.ix.Resolve(listed, false)
	return err == nil && p.inImage(r)
}

// listedDir says whether a path a database lists is a directory in the image (or a symlink to one: /lib in a
// merged-usr image, which dpkg lists as the directory it was), and whether the slim image keeps it in its
// own right: for a reason other than being above another kept path.
func (p *pruner) listedDir(listed string) (isDir, ownRight bool) {
	r, err := p.ix.Resolve(listed, false)
	if err != nil {
		return false, false
	}
	e, ok := p.ix.Lookup(r)
	if !ok {
		return false, false
	}
	cands := []string{r}
	if e.Type == rootfs.TypeSymlink {
		d, err := p.ix.Resolve(listed, true)
		if e, ok := p.ix.Lookup(d); err != nil || !ok || e.Type != rootfs.TypeDir {
			return false, false
		}
		cands = append(cands, d)
	} else if e.Type != rootfs.TypeDir {
		return false, false
	}
	for _, c := range cands {
		if why, ok := p.out.Keep[c]; ok && why != rootfs.ReasonParent {
			return true, true
		}
		for _, why := range p.keep[c] {
			if why != rootfs.ReasonParent {
				return true, true
			}
		}
	}
	return true, false
}

// keptListed says which of the paths a package's file list names stay in its cut list: the files (and
// symlinks) the slim image has, and the directories leading to them as the list spells them, or that the
// slim image keeps in their own right (not only as a parent: an empty directory the app used).
func (p *pruner) keptListed(listed []string) []bool {
	keep := make([]bool, len(listed))
	var dirs []int
	leading := map[string]bool{"/": true}
	for i, l := range listed {
		if l == "" {
			continue
		}
		isDir, own := p.listedDir(l)
		if isDir {
			dirs = append(dirs, i)
		}
		if keep[i] = own || !isDir && p.has(l); keep[i] {
			for d := path.Dir(path.Clean("/" + l)); d != "/"; d = path.Dir(d) {
				leading[d] = true
			}
		}
	}
	for _, i := range dirs {
		keep[i] = keep[i] || leading[path.Clean("/"+listed[i])]
	}
	return keep
}

// add keeps the path q with why, and returns it as the index has it: each symlink on its way is followed
// and kept (the last component's too when followLast is set), with the directories above each.
func (p *pruner) add(q, why string, followLast bool) string {
	real, links := p.walk(q, followLast)
	for _, l := range links {
		p.mark(l, rootfs.ReasonSymlink)
	}
	p.mark(real, why)
	return real
}

// walk resolves q in the index as Index.Resolve does, and lists the symlinks it followed (after 40, it
// stops following).
func (p *pruner) walk(q string, followLast bool) (real string, links []string) {
	hops := 0
	real = p.walkFrom("/", q, followLast, &hops, &links)
	return real, links
}

func (p *pruner) walkFrom(cur, q string, followLast bool, hops *int, links *[]string) string {
	names := strings.Split(strings.Trim(path.Clean("/"+q), "/"), "/")
	for i, name := range names {
		if name == "" {
			continue
		}
		next := path.Join(cur, name)
		e, ok := p.ix.Lookup(next)
		if ok && e.Type == rootfs.TypeSymlink && (i < len(names)-1 || followLast) && *hops < 40 {
			*hops++
			*links = append(*links, next)
			base := cur
			if path.IsAbs(e.Linkname) {
				base = "/"
			}
			// base has no symlink on its way: ".." in the target is lexical from there, as Index.Resolve has it.
			next = p.walkFrom("/", path.Join(base, e.Linkname), true, hops, links)
		}
		cur = next
	}
	return cur
}

// mark keeps q with why, and the directories above it that the closure does not keep.
func (p *pruner) mark(q, why string) {
	if why == ReasonPackageDB || p.keep[q] == nil {
		if old, ok := p.out.Keep[q]; !ok || old == rootfs.ReasonParent {
			p.out.Keep[q] = why
		}
	}
	for d := path.Dir(q); d != "/"; d = path.Dir(d) {
		if p.keep[d] != nil {
			continue
		}
		if _, ok := p.out.Keep[d]; !ok {
			p.out.Keep[d] = rootfs.ReasonParent
		}
	}
}

// addTree keeps q and, when it is a directory, everything under it.
func (p *pruner) addTree(q string) {
	q = p.add(q, ReasonPackageDB, false)
	for _, name := range p.ix.Children(q) {
		p.addTree(path.Join(q, name))
	}
}

// isFile reports whether the index path q is a regular file.
func (p *pruner) isFile(q string) bool {
	e, ok := p.ix.Lookup(q)
	return ok && e.Type == rootfs.TypeFile
}

// read reads the regular file q of the tree, as Read reads databases (at most maxDBFile bytes).
func (p *pruner) read(q string) ([]byte, error) {
	rc, err := (&reader{tree: p.tree}).openDB(q)
	if err != nil {
		return nil, err
	}
	if rc == nil {
		return nil, fmt.Errorf("reading %s: %w", q, fs.ErrNotExist)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", q, err)
	}
	return b, nil
}

// replace cuts the kept file q with cut, giving the slim image the result when it differs.
func (p *pruner) replace(q string, cut func([]byte) []byte) error {
	b, err := p.read(q)
	if err != nil {
		return fmt.Errorf("pruning %s: %w", q, err)
	}
	if nb := cut(b); !bytes.Equal(nb, b) {
		p.out.Replace[q] = nb
	}
	return nil
}

// splitLines splits b after each newline (a last line without one stays so).
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	ls := strings.SplitAfter(string(b), "\n")
	if ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// trimEOL is a line without its newline (and a DOS carriage return).
func trimEOL(l string) string { return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r") }

// cutLines keeps b's lines for which keep is true, each with its newline.
func cutLines(b []byte, keep func(line string) bool) []byte {
	out := []byte{}
	for _, l := range splitLines(b) {
		if keep(trimEOL(l)) {
			out = append(out, l...)
		}
	}
	return out
}

// cutList cuts a file list of one path a line (dpkg's .list) as keptListed says.
func (p *pruner) cutList(b []byte) []byte {
	ls := splitLines(b)
	paths := make([]string, len(ls))
	for i, l := range ls {
		paths[i] = trimEOL(l)
	}
	out := []byte{}
	for i, keep := range p.keptListed(paths) {
		if keep {
			out = append(out, ls[i]...)
		}
	}
	return out
}

// admindirKept are the files of dpkg's admindir kept beside status and the packages' info files; each is
// kept as it is.
var admindirKept = []string{"info/format", "arch", "diversions", "statoverride"}

// debNames says which dpkg names (as the status file and the info files spell them) are kept packages'.
type debNames struct {
	byArch  map[string]bool // name:arch
	anyArch map[string]bool // name, of a package whose architecture the Set does not say
	names   map[string]bool // name
}

func keptDebNames(pkgs []*Package, kept map[*Package]bool) *debNames {
	n := &debNames{byArch: map[string]bool{}, anyArch: map[string]bool{}, names: map[string]bool{}}
	for _, pkg := range pkgs {
		if !kept[pkg] {
			continue
		}
		n.names[pkg.Name] = true
		if pkg.Arch == "" {
			n.anyArch[pkg.Name] = true
		} else {
			n.byArch[pkg.Name+":"+pkg.Arch] = true
		}
	}
	return n
}

// stanza reports whether a status stanza is a kept package's.
func (n *debNames) stanza(f map[string]string) bool {
	return n.byArch[f["Package"]+":"+f["Architecture"]] || n.anyArch[f["Package"]]
}

// info reports whether an info file's package part ("libc6", or "libc6:amd64" for a Multi-Arch: same
// package) names a kept package.
func (n *debNames) info(owner string) bool {
	name, _, hasArch := strings.Cut(owner, ":")
	if hasArch {
		return n.byArch[owner] || n.anyArch[name]
	}
	return n.names[owner]
}

// dpkg prunes one dpkg database: status (the file pkgs were read from) and the info files beside it; or, in
// a distroless image's status.d, one package's stanza file and its md5sums.
func (p *pruner) dpkg(db string, pkgs []*Package, kept map[*Package]bool) ([]func() error, error) {
	status, _ := p.walk(db, true)
	if !p.isFile(status) {
		return nil, fmt.Errorf("not a regular file in the image")
	}
	names := keptDebNames(pkgs, kept)
	b, err := p.read(status)
	if err != nil {
		return nil, err
	}
	newStatus := cutStanzas(b, names.stanza)
	if path.Base(path.Dir(status)) == "status.d" {
		// distroless: a file of stanzas (one) per package, its md5sums beside it, no info directory.
		if len(newStatus) == 0 {
			return nil, nil
		}
		p.add(db, ReasonPackageDB, true)
		if !bytes.Equal(newStatus, b) {
			p.out.Replace[status] = newStatus
		}
		md5 := status + ".md5sums"
		if !p.isFile(md5) {
			return nil, nil
		}
		p.add(md5, ReasonPackageDB, false)
		return []func() error{func() error { return p.replace(md5, p.cutMD5sums) }}, nil
	}
	p.add(db, ReasonPackageDB, true)
	if !bytes.Equal(newStatus, b) {
		p.out.Replace[status] = newStatus
	}
	admin := path.Dir(status)
	for _, f := range admindirKept {
		if q := path.Join(admin, f); p.isFile(q) {
			p.add(q, ReasonPackageDB, false)
		}
	}
	var cuts []func() error
	info := path.Join(admin, "info")
	for _, name := range p.ix.Children(info) {
		i := strings.LastIndexByte(name, '.')
		if i <= 0 || !names.info(name[:i]) {
			continue
		}
		q := path.Join(info, name)
		if !p.isFile(q) || !slices.Contains(infoKept, name[i+1:]) {
			continue
		}
		p.add(q, ReasonPackageDB, false)
		var keepLine func(string) bool
		switch name[i+1:] {
		case "md5sums":
			cuts = append(cuts, func() error { return p.replace(q, p.cutMD5sums) })
			continue
		case "list": // a path a line, spaces and all
			cuts = append(cuts, func() error { return p.replace(q, p.cutList) })
			continue
		case "conffiles": // a path a line, after flags where there are some ("remove-on-upgrade /etc/x")
			keepLine = func(line string) bool {
				i := strings.IndexByte(line, '/')
				return i >= 0 && p.has(line[i:])
			}
		}
		cuts = append(cuts, func() error {
			return p.replace(q, func(b []byte) []byte { return cutLines(b, keepLine) })
		})
	}
	return cuts, nil
}

// infoKept are the info files of a kept package the slim image keeps, each cut to its kept files: what
// dpkg -L, -S and -V, and scanners, read. The rest (maintainer scripts, shlibs, symbols, triggers,
// debconf templates) is for installing and removing the package, which a slim image cannot do whole anyway:
// in the python sample they were 0.8 MB of the database's 0.9 (libc6's symbols and templates, tzdata's
// templates, libssl3's symbols).
var infoKept = []string{"list", "md5sums", "conffiles"}

// cutMD5sums keeps the lines of an md5sums file ("HASH  path/without/leading/slash") whose file the slim
// image has.
func (p *pruner) cutMD5sums(b []byte) []byte {
	return cutLines(b, func(line string) bool {
		_, f, ok := strings.Cut(line, "  ")
		return ok && f != "" && p.has("/"+f)
	})
}

// cutStanzas keeps the stanzas of a deb822 file (dpkg's status) for which keep is true of their fields,
// each byte for byte with the blank lines after it, in order. Only single-line field values are given to
// keep (Package, Architecture are).
func cutStanzas(b []byte, keep func(fields map[string]string) bool) []byte {
	out := []byte{}
	for len(b) > 0 {
		n := stanzaLen(b)
		if keep(stanzaFields(b[:n])) {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// stanzaLen is the length of b's first stanza with the blank lines after it (those before it too, at the
// start of the file).
func stanzaLen(b []byte) int {
	seenText, blank := false, false
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		end := len(b)
		if j >= 0 {
			end = i + j + 1
		}
		isBlank := len(bytes.TrimSpace(b[i:end])) == 0
		if !isBlank && seenText && blank {
			return i
		}
		seenText = seenText || !isBlank
		blank = isBlank
		i = end
	}
	return len(b)
}

// stanzaFields are a stanza's fields, the first line of each value (deb822 and apk's "K:value" both: a
// name, ':', the value).
func stanzaFields(s []byte) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(string(s), "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = strings.TrimSpace(v)
		}
	}
	return f
}

// apk prunes apk's installed database: only the kept packages' stanzas, their file lines cut.
func (p *pruner) apk(db string, pkgs []*Package, kept map[*Package]bool) ([]func() error, error) {
	installed, _ := p.walk(db, true)
	if !p.isFile(installed) {
		return nil, fmt.Errorf("not a regular file in the image")
	}
	keptNames := map[string]bool{}
	for _, pkg := range pkgs {
		if kept[pkg] {
			keptNames[pkg.Name] = true // apk installs one version of a name
		}
	}
	p.add(db, ReasonPackageDB, true)
	return []func() error{func() error {
		return p.replace(installed, func(b []byte) []byte {
			var out []byte
			for len(b) > 0 {
				n := stanzaLen(b)
				if f := stanzaFields(b[:n]); keptNames[f["P"]] {
					out = append(out, p.cutApkFiles(b[:n])...)
				}
				b = b[n:]
			}
			if out == nil {
				out = []byte{}
			}
			return out
		})
	}}, nil
}

// cutApkFiles cuts one installed stanza's file lines as keptListed says: an F:DIR line (with the M: line
// after it), an R:NAME line (with the a: and Z: lines after it) for DIR/NAME. Directories are relative to
// the root; R: lines before any F: are the root's. Every other line stays where it was.
func (p *pruner) cutApkFiles(s []byte) []byte {
	ls := splitLines(s)
	var paths []string
	owner := make([]int, len(ls)) // the index in paths of the F: or R: line a line goes with, or -1
	dir := "/"
	for i, l := range ls {
		owner[i] = -1
		k, v, _ := strings.Cut(trimEOL(l), ":")
		switch k {
		case "F":
			dir = path.Join("/", v)
			paths = append(paths, dir)
			owner[i] = len(paths) - 1
		case "R":
			paths = append(paths, path.Join(dir, v))
			owner[i] = len(paths) - 1
		case "M", "a", "Z":
			if i > 0 && owner[i-1] >= 0 {
				owner[i] = owner[i-1]
			}
		}
	}
	keep := p.keptListed(paths)
	out := []byte{}
	for i, l := range ls {
		if owner[i] < 0 || keep[owner[i]] {
			out = append(out, l...)
		}
	}
	return out
}

// metadata keeps a kept language package's metadata whole, but its file list, which is cut.
func (p *pruner) metadata(pkg *Package) ([]func() error, error) {
	db, _ := p.walk(pkg.DB, true)
	e, ok := p.ix.Lookup(db)
	if !ok {
		// A jar's pom.properties: the jar is the package's file, kept already.
		return nil, nil
	}
	p.add(pkg.DB, ReasonPackageDB, true)
	p.addTree(db)
	if e.Type != rootfs.TypeDir || pkg.Type != PyPI {
		return nil, nil
	}
	var cuts []func() error
	// RECORD's paths are relative to the directory holding the dist-info (site-packages); an egg-info's
	// installed-files.txt's to the egg-info itself.
	for file, base := range map[string]string{"RECORD": path.Dir(db), "installed-files.txt": db} {
		q := path.Join(db, file)
		if !p.isFile(q) {
			continue
		}
		cuts = append(cuts, func() error {
			return p.replace(q, func(b []byte) []byte {
				return cutLines(b, func(line string) bool {
					f := line
					if file == "RECORD" {
						rec, err := csv.NewReader(strings.NewReader(line)).Read()
						if err != nil || len(rec) == 0 {
							return true // not a record: left as it was
						}
						f = rec[0]
					}
					if f == "" {
						return false
					}
					if !path.IsAbs(f) {
						f = path.Join(base, f)
					}
					return p.has(f)
				})
			})
		})
	}
	return cuts, nil
}
