package pkgdb

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"

	packageurl "github.com/anchore/packageurl-go"

	"github.com/slimoci/slimoci/rootfs"
)

// What Read accepts of an image. The image is hostile: every database is read through the tree's confined
// readers, each read is bounded, and so is what Read keeps, whatever the image holds.
const (
	// MaxPackages is the most packages Read accepts (a large Debian desktop has some 5000, a large node app
	// some 3000 modules); more fail with ErrTooMany.
	MaxPackages = 100_000
	// MaxOwned is the most package-path pairs Read accepts, all packages together: some 128 MiB of paths'
	// headers at most (the paths themselves are the index's). Real images have about one pair an index
	// entry (the Debian samples: 11000-34000).
	MaxOwned = 8 << 20
	// maxDBFile bounds what is read of one database file (dpkg's status and .list files, apk's installed,
	// a RECORD): a dpkg status takes some 1 KiB a package, a .list some 50 bytes a path.
	maxDBFile = 64 << 20
	// maxStanza bounds one stanza of a deb822 file (a dpkg status's longest are some 20 KiB), and with it
	// one line.
	maxStanza = 1 << 20
	// maxField bounds a name, version, architecture or licence Read keeps.
	maxField = 4 << 10
	// maxUnreadable bounds the reasons Set.Unreadable keeps.
	maxUnreadable = 1000
)

// The limits as Read applies them; tests lower them.
var maxPackages, maxOwned = MaxPackages, MaxOwned

// Read lists every package the unpacked image's databases hold, sorted by type, name and version:
//   - dpkg: /var/lib/dpkg/status (installed packages only) with each package's info/NAME[:ARCH].list, and
//     a distroless image's /var/lib/dpkg/status.d/NAME with NAME.md5sums; the licence from
//     /usr/share/doc/NAME/copyright when it is machine-readable (DEP-5).
//   - apk: /lib/apk/db/installed.
//   - rpm: not read. No pure-Go reader of rpm's databases is kept up where slimoci gets its modules: the
//     Go module proxy serves github.com/knqyf263/go-rpmdb only as a 2021 snapshot, which predates the
//     sqlite database of current Fedora and RHEL; cgo or a reader of our own (BerkeleyDB, ndb and sqlite
//     formats) is not worth it before an rpm image is asked for.
//   - Python: every *.dist-info (METADATA, RECORD) and *.egg-info (PKG-INFO, installed-files.txt or
//     top_level.txt) in a site-packages or dist-packages directory.
//   - node: every package.json of a package directory (NAME or @SCOPE/NAME in a node_modules directory, or
//     in Debian's /usr/share/nodejs, /usr/lib/nodejs, /usr/lib/TRIPLET/nodejs).
//   - Ruby: every specifications/*.gemspec and specifications/default/*.gemspec.
//   - Java: every *.jar, *.war and *.ear's META-INF/maven/GROUP/ARTIFACT/pom.properties.
//
// A dpkg or apk database that does not parse fails Read (ErrDatabase, naming the file and line): those are
// what the slim image's database is cut from. Language metadata that does not parse is skipped and said in
// Set.Unreadable: node_modules and site-packages hold test fixtures and broken leftovers often enough that
// one must not stop a build. Packages with the same package URL (the same npm module installed in two
// places) are one package owning both places' files.
func Read(tree *rootfs.Tree) (*Set, error) {
	r := &reader{tree: tree, ix: tree.Index, os: readOSRelease(tree)}
	if err := r.dpkg(); err != nil {
		return nil, err
	}
	if err := r.apk(); err != nil {
		return nil, err
	}
	if err := r.languages(); err != nil {
		return nil, err
	}
	return r.set(), nil
}

// reader is one Read.
type reader struct {
	tree       *rootfs.Tree
	ix         *rootfs.Index
	os         osRelease
	pkgs       []*Package
	owned      int
	unreadable []string
}

// add accepts p, making its package URL, once its files are owned.
func (r *reader) add(p *Package) error {
	if len(r.pkgs) >= maxPackages {
		return fmt.Errorf("reading %s: %w: more than %d", p.DB, ErrTooMany, maxPackages)
	}
	for _, f := range []string{p.Namespace, p.Name, p.Version, p.Arch, p.Source, p.SourceVersion} {
		if len(f) > maxField {
			return fmt.Errorf("reading %s: %w: a name or version of %d bytes", p.DB, ErrDatabase, len(f))
		}
	}
	if len(p.License) > maxField {
		p.License = ""
	}
	p.PURL = r.purl(p)
	r.pkgs = append(r.pkgs, p)
	return nil
}

// own gives p the index path q.
func (r *reader) own(p *Package, q string) error {
	if r.owned >= maxOwned {
		return fmt.Errorf("reading %s: %w: more than %d paths owned", p.DB, ErrTooMany, maxOwned)
	}
	r.owned++
	p.Files = append(p.Files, q)
	return nil
}

// ownListed gives p the path a database lists, as the index has it (indexPath); a path the image does not
// have is no one's.
func (r *reader) ownListed(p *Package, listed string, isDir bool) error {
	if q, ok := indexPath(r.ix, listed, isDir); ok {
		return r.own(p, q)
	}
	return nil
}

// ownTree gives p the index path q and everything under it, but what is under a directory named one of
// skip.
func (r *reader) ownTree(p *Package, q string, skip ...string) error {
	e, ok := r.ix.Lookup(q)
	if !ok {
		return nil
	}
	if err := r.own(p, e.Path); err != nil {
		return err
	}
	if e.Type != rootfs.TypeDir {
		return nil
	}
	for _, name := range r.ix.Children(e.Path) {
		if slices.Contains(skip, name) {
			continue
		}
		if err := r.ownTree(p, path.Join(e.Path, name), skip...); err != nil {
			return err
		}
	}
	return nil
}

// skip records a language package's metadata that could not be read.
func (r *reader) skip(err error) {
	if len(r.unreadable) < maxUnreadable {
		r.unreadable = append(r.unreadable, err.Error())
	}
}

// indexPath is the path the index has for a path a database lists: the symlinks on its way followed as the
// kernel would inside the tree (dpkg lists /lib/x86_64-linux-gnu/libc.so.6; a merged-usr image has it at
// /usr/lib/x86_64-linux-gnu/libc.so.6), the last component not: a symlink a package ships is its own. But a
// path the database says is a directory (isDir) that the image has as a symlink to a directory is the
// directory (dpkg's /lib is /usr/lib there, and the /lib symlink is no package's). ok is false when the
// image does not have the path.
func indexPath(ix *rootfs.Index, listed string, isDir bool) (q string, ok bool) {
	q, err := ix.Resolve(path.Clean("/"+listed), false)
	if err != nil {
		return "", false
	}
	e, ok := ix.Lookup(q)
	if !ok {
		return "", false
	}
	if e.Type == rootfs.TypeSymlink && isDir {
		if t, err := ix.Resolve(q, true); err == nil {
			if te, ok := ix.Lookup(t); ok && te.Type == rootfs.TypeDir {
				return te.Path, true
			}
		}
	}
	// The index's own string: a path owned by many packages is stored once.
	return e.Path, true
}

// set sorts what was read into a Set: packages with the same package URL merged, files sorted, owners
// mapped.
func (r *reader) set() *Set {
	byPURL := map[string]*Package{}
	var pkgs []*Package
	for _, p := range r.pkgs {
		if first, ok := byPURL[p.PURL]; ok {
			first.Files = append(first.Files, p.Files...)
			continue
		}
		byPURL[p.PURL] = p
		pkgs = append(pkgs, p)
	}
	s := NewSet(pkgs)
	s.Unreadable = r.unreadable
	return s
}

// NewSet makes a Set of pkgs: sorted by type, name (case aside: attrs before Flask), version (then package URL and database), each one's
// files sorted, and the owners of each path mapped.
func NewSet(pkgs []*Package) *Set {
	for _, p := range pkgs {
		sort.Strings(p.Files)
		p.Files = slices.Compact(p.Files)
	}
	slices.SortFunc(pkgs, func(a, b *Package) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version), cmp.Compare(a.PURL, b.PURL), cmp.Compare(a.DB, b.DB))
	})
	s := &Set{Packages: pkgs, owners: map[string][]*Package{}}
	for _, p := range pkgs {
		for _, f := range p.Files {
			s.owners[f] = append(s.owners[f], p)
		}
	}
	return s
}

// Owners lists the packages owning the index path p, in the Set's order; none for a path no package lists.
func (s *Set) Owners(p string) []*Package {
	if s.owners != nil {
		return s.owners[p]
	}
	// A Set made by hand.
	var out []*Package
	for _, pkg := range s.Packages {
		if slices.Contains(pkg.Files, p) {
			out = append(out, pkg)
		}
	}
	return out
}

// Usage says, for each package, how many of its files a slim image keeping keep's paths (a path is kept when
// keep[path] != nil, as in a closure's Keep) keeps and drops, and their bytes. A package's files here are
// what is not a directory (regular files, symlinks, device nodes); bytes are regular files'. A file owned by
// two packages counts for both. Sorted by dropped bytes, the most first, then package URL.
func (s *Set) Usage(ix *rootfs.Index, keep map[string][]string) []Usage {
	out := make([]Usage, 0, len(s.Packages))
	for _, p := range s.Packages {
		u := Usage{Package: p}
		for _, f := range p.Files {
			e, ok := ix.Lookup(f)
			if !ok || e.Type == rootfs.TypeDir {
				continue
			}
			var size int64
			if e.Type == rootfs.TypeFile {
				size = e.Size
			}
			if keep[f] != nil {
				u.KeptFiles++
				u.KeptBytes += size
			} else {
				u.DroppedFiles++
				u.DroppedBytes += size
			}
		}
		out = append(out, u)
	}
	slices.SortStableFunc(out, func(a, b Usage) int {
		return cmp.Or(cmp.Compare(b.DroppedBytes, a.DroppedBytes), cmp.Compare(a.Package.PURL, b.Package.PURL))
	})
	return out
}

// purl is p's package URL as syft writes it (a test compares the two), in the purl spec's canonical form:
// qualifiers sorted, names normalized as the type says (pypi's Flask_Login is flask-login), each part
// escaped (pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.4&upstream=glibc).
func (r *reader) purl(p *Package) string {
	q := map[string]string{}
	switch p.Type {
	case Deb:
		q["arch"], q["upstream"], q["distro"] = p.Arch, p.Source, r.os.distro()
		if p.Source != "" && p.SourceVersion != "" {
			q["upstream"] += "@" + p.SourceVersion
		}
	case Apk:
		q["arch"], q["distro"] = p.Arch, r.os.distro()
		if p.Source != p.Name {
			q["upstream"] = p.Source
		}
	}
	u := packageurl.NewPackageURL(p.Type, p.Namespace, p.Name, p.Version, packageurl.QualifiersFromMap(q), "")
	// Normalize drops the empty qualifiers; it fails only on what no type here has (an empty name, a bad
	// qualifier key), and the URL is then as it was made.
	_ = u.Normalize()
	return u.ToString()
}

// osRelease is what /etc/os-release says of the image's distribution.
type osRelease struct{ id, versionID, buildID string }

// debianVersion is a point release in /etc/debian_version ("12.4"), as syft takes it.
var debianVersion = regexp.MustCompile(`^\d+(?:\.\d+)?$`)

// readOSRelease reads /etc/os-release, or /usr/lib/os-release; none is the zero osRelease. On Debian, the
// point release in /etc/debian_version is the version, as syft has it (distro=debian-12.4, where os-release
// says 12).
func readOSRelease(tree *rootfs.Tree) osRelease {
	o := readOSReleaseFile(tree)
	if o.id == "debian" {
		if b, err := tree.ReadFile("/etc/debian_version"); err == nil {
			if v := strings.TrimSpace(string(b)); debianVersion.MatchString(v) {
				o.versionID = v
			}
		}
	}
	return o
}

func readOSReleaseFile(tree *rootfs.Tree) osRelease {
	var o osRelease
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := tree.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok {
				continue
			}
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				v = v[1 : len(v)-1]
			}
			if len(v) > maxField {
				continue
			}
			switch k {
			case "ID":
				o.id = strings.ToLower(v)
			case "VERSION_ID":
				o.versionID = v
			case "BUILD_ID":
				o.buildID = v
			}
		}
		break
	}
	return o
}

// namespace is the distribution a deb or apk package URL names: os-release's ID, or def without one.
func (o osRelease) namespace(def string) string { return cmp.Or(o.id, def) }

// distro is the distro qualifier syft writes: ID-VERSION_ID (debian-12), or ID-BUILD_ID, or ID alone.
func (o osRelease) distro() string {
	if o.id == "" {
		return ""
	}
	if v := cmp.Or(o.versionID, o.buildID); v != "" {
		return o.id + "-" + v
	}
	return o.id
}

// openDB opens the tree's regular file p for reading, at most maxDBFile bytes of it: a larger one fails with
// ErrTooLarge. A file the tree does not have is nil, and no error.
func (r *reader) openDB(p string) (io.ReadCloser, error) {
	f, err := r.tree.Open(p)
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if st.Size() > maxDBFile {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", p, &rootfs.LimitError{Size: st.Size(), Limit: maxDBFile})
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, maxDBFile), f}, nil
}

// notExist reports whether err is a file that is not there (or a path through a file).
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// eachLine calls fn with each line of r, without its newline, and its number from 1; a line over max bytes
// is an ErrDatabase. A last line without a newline is a line.
func eachLine(r io.Reader, file string, max int, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), max)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Text()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return syntaxError(file, n+1, "a line longer than %d bytes", max)
		}
		return fmt.Errorf("reading %s: %w", file, err)
	}
	return nil
}

// field is one field of a deb822 stanza (dpkg's status) or of an RFC 822 header (Python's METADATA): the
// value's continuation lines follow its first, each after a newline, trimmed.
type field struct {
	key, value string
	line       int
	// more are the continuation lines, joined into value when the stanza ends: appending each to value
	// would take a hostile stanza of many short lines quadratic time.
	more []string
}

// errStop ends eachStanza early, without an error.
var errStop = errors.New("stop")

// eachStanza calls fn with each stanza of the deb822 file r (fields "Name: value", continuation lines
// starting with a space or a tab, stanzas separated by blank lines) and the line it starts at. A stanza over
// maxStanza bytes, a line that is not a field, or a continuation with no field before it is an ErrDatabase.
// fn returning errStop ends the reading.
func eachStanza(r io.Reader, file string, fn func(line int, fields []field) error) error {
	var fields []field
	start, size := 0, 0
	flush := func() error {
		if len(fields) == 0 {
			return nil
		}
		f := fields
		fields, size = nil, 0
		for i := range f {
			if f[i].more != nil {
				f[i].value += "\n" + strings.Join(f[i].more, "\n")
				f[i].more = nil
			}
		}
		return fn(start, f)
	}
	err := eachLine(r, file, maxStanza, func(n int, line string) error {
		if strings.TrimSpace(line) == "" {
			return flush()
		}
		if size += len(line) + 1; size > maxStanza {
			return syntaxError(file, n, "a stanza (from line %d) longer than %d bytes", start, maxStanza)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return syntaxError(file, n, "a continuation line with no field before it")
			}
			f := &fields[len(fields)-1]
			f.more = append(f.more, strings.TrimSpace(line))
			return nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return syntaxError(file, n, "not a field: %.40q", line)
		}
		if len(fields) == 0 {
			start = n
		}
		fields = append(fields, field{key: k, value: strings.TrimSpace(v), line: n})
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// get is the value of the first field named key (case-insensitively, as deb822 and RFC 822 compare them).
func get(fields []field, key string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.key, key) {
			return f.value, true
		}
	}
	return "", false
}

// joinLicenses makes one licence expression of the licences a database lists for a package: each once,
// sorted, joined with AND (the reading that asks the most of a user: Debian lists a licence for each part
// of a package; RubyGems and npm's lists do not say whether they are a choice), a compound one in
// parentheses. Too long a result is none.
func joinLicenses(ls []string) string {
	var out []string
	for _, l := range ls {
		if l = strings.TrimSpace(l); l != "" && !strings.EqualFold(l, "UNKNOWN") {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	out = slices.Compact(out)
	if len(out) > 1 {
		for i, l := range out {
			if strings.ContainsAny(l, " \t") {
				out[i] = "(" + l + ")"
			}
		}
	}
	s := strings.Join(out, " AND ")
	if len(s) > maxField {
		return ""
	}
	return s
}

// languages reads the language ecosystems' metadata the index holds, found in one walk. Only ErrTooMany ends
// it; metadata that cannot be read is skipped and said.
func (r *reader) languages() error {
	var found []func() error
	r.ix.Walk(func(e *rootfs.Entry) error {
		dir := path.Dir(e.Path)
		base, parent := path.Base(e.Path), path.Base(dir)
		switch {
		case (strings.HasSuffix(base, ".dist-info") || strings.HasSuffix(base, ".egg-info")) &&
			(parent == "site-packages" || parent == "dist-packages") && (e.Type == rootfs.TypeDir || e.Type == rootfs.TypeFile):
			found = append(found, func() error { return r.python(e) })
		case base == "package.json" && (e.Type == rootfs.TypeFile || e.Type == rootfs.TypeSymlink) && nodePackageDir(dir):
			found = append(found, func() error { return r.node(e.Path) })
		case strings.HasSuffix(base, ".gemspec") && e.Type == rootfs.TypeFile &&
			(parent == "specifications" || parent == "default" && path.Base(path.Dir(dir)) == "specifications"):
			found = append(found, func() error { return r.gem(e.Path) })
		case e.Type == rootfs.TypeFile && (strings.HasSuffix(base, ".jar") || strings.HasSuffix(base, ".war") || strings.HasSuffix(base, ".ear")):
			found = append(found, func() error { return r.jar(e) })
		}
		return nil
	})
	for _, read := range found {
		if err := read(); errors.Is(err, ErrTooMany) {
			return err
		} else if err != nil {
			r.skip(err)
		}
	}
	return nil
}
