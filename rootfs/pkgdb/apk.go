package pkgdb

import (
	"path"
)

const apkInstalled = "/lib/apk/db/installed"

// apk reads apk's database of installed packages: stanzas of "K:value" lines, separated by blank lines (P:
// name, V: version, A: architecture, o: origin, L: licence; F: a directory, relative to the root, and R: a
// file in the last F: directory, or in the root before any).
func (r *reader) apk() error {
	f, err := r.openDB(apkInstalled)
	if f == nil {
		return err
	}
	defer f.Close()
	var p *Package
	start, dir := 0, "/"
	done := func() error {
		if p == nil {
			return nil
		}
		defer func() { p = nil }()
		if p.Name == "" || p.Version == "" {
			return syntaxError(apkInstalled, start, "a package with no P: name or V: version")
		}
		return r.add(p)
	}
	err = eachLine(f, apkInstalled, maxStanza, func(n int, line string) error {
		if line == "" {
			return done()
		}
		if len(line) < 2 || line[1] != ':' {
			return syntaxError(apkInstalled, n, "not a \"K:value\" line: %.40q", line)
		}
		if p == nil {
			p = &Package{Type: Apk, Namespace: r.os.namespace("alpine"), DB: apkInstalled}
			start, dir = n, "/"
		}
		v := line[2:]
		switch line[0] {
		case 'P':
			p.Name = v
		case 'V':
			p.Version = v
		case 'A':
			p.Arch = v
		case 'o':
			p.Source = v
		case 'L':
			p.License = v
		case 'F':
			dir = path.Clean("/" + v)
			return r.ownListed(p, dir, true)
		case 'R':
			return r.ownListed(p, path.Join(dir, v), false)
		}
		return nil
	})
	if err == nil {
		err = done()
	}
	return err
}
