package pkgdb

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strings"
)

const (
	dpkgStatus  = "/var/lib/dpkg/status"
	dpkgStatusD = "/var/lib/dpkg/status.d"
)

var (
	// debName and debArch are the names dpkg accepts (deb-control(5)); a name is also a path component of
	// the info and doc files Read opens, so nothing else is taken.
	debName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]*$`)
	debArch = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// debSource is a Source field: "glibc", or "gcc-12 (12.2.0-14)" when the source's version differs.
	debSource = regexp.MustCompile(`^(\S+)(?:\s+\((\S+)\))?$`)
	// dep5 is the first line of a machine-readable copyright file (DEP-5).
	dep5 = regexp.MustCompile(`^Format:\s*https?://www\.debian\.org/doc/packaging-manuals/copyright-format/`)
)

// dpkg reads dpkg's status with each package's .list, and a distroless image's status.d.
func (r *reader) dpkg() error {
	if err := r.dpkgStatusFile(dpkgStatus, false); err != nil {
		return err
	}
	dir, err := r.ix.Resolve(dpkgStatusD, true)
	if err != nil {
		return nil
	}
	for _, name := range r.ix.Children(dir) {
		if strings.HasSuffix(name, ".md5sums") {
			continue // NAME's files, read with NAME
		}
		if err := r.dpkgStatusFile(path.Join(dir, name), true); err != nil {
			return err
		}
	}
	return nil
}

// dpkgStatusFile reads one status file's installed packages. In status.d (distroless), a package's files are
// in FILE.md5sums and a stanza without a Status field is installed.
func (r *reader) dpkgStatusFile(file string, distroless bool) error {
	f, err := r.openDB(file)
	if f == nil {
		return err
	}
	defer f.Close()
	seen := map[string]int{}
	return eachStanza(f, file, func(line int, fields []field) error {
		p, err := r.debPackage(file, line, fields, distroless)
		if p == nil || err != nil {
			return err
		}
		id := p.Name + ":" + p.Arch
		if first, ok := seen[id]; ok {
			return syntaxError(file, line, "package %s listed again (first at line %d)", id, first)
		}
		seen[id] = line
		p.License = r.debLicense(p.Name)
		if distroless {
			err = r.debMD5sums(p, file+".md5sums")
		} else {
			err = r.debList(p, path.Join(path.Dir(file), "info"))
		}
		if err != nil {
			return err
		}
		return r.add(p)
	})
}

// debPackage is the package a status stanza describes, or nil when it is not installed.
func (r *reader) debPackage(file string, line int, fields []field, distroless bool) (*Package, error) {
	m := map[string]string{}
	for _, f := range fields {
		if _, ok := m[f.key]; ok {
			return nil, syntaxError(file, f.line, "field %s given twice", f.key)
		}
		m[f.key] = f.value
	}
	name, ok := m["Package"]
	if !ok {
		return nil, syntaxError(file, line, "a stanza with no Package field")
	}
	if !debName.MatchString(name) {
		return nil, syntaxError(file, line, "%.40q is not a package name", name)
	}
	status, ok := m["Status"]
	if !ok && !distroless || ok && !debInstalled(status) {
		return nil, nil
	}
	p := &Package{Type: Deb, Namespace: r.os.namespace("debian"), Name: name, Version: m["Version"], Arch: m["Architecture"], DB: file}
	if p.Version == "" || strings.ContainsAny(p.Version, " \t\n") {
		return nil, syntaxError(file, line, "package %s has no version or a bad one (%.40q)", name, p.Version)
	}
	if p.Arch != "" && !debArch.MatchString(p.Arch) {
		return nil, syntaxError(file, line, "package %s: %.40q is not an architecture", name, p.Arch)
	}
	if src, ok := m["Source"]; ok {
		sm := debSource.FindStringSubmatch(src)
		if sm == nil {
			return nil, syntaxError(file, line, "package %s: %.40q is not a Source field", name, src)
		}
		p.Source, p.SourceVersion = sm[1], sm[2]
	}
	return p, nil
}

// debInstalled reports whether a Status field ("want flag status") says the package is installed and meant
// to stay so: "install ok installed", or "hold ok installed" for a package held at its version. A package
// marked for removal, half-installed, or with only its configuration files left is not.
func debInstalled(status string) bool {
	f := strings.Fields(status)
	return len(f) == 3 && (f[0] == "install" || f[0] == "hold") && f[1] == "ok" && f[2] == "installed"
}

// debList gives p the paths its info/NAME:ARCH.list (a Multi-Arch: same package's) or info/NAME.list names.
// A path dpkg lists with more listed under it is a directory (what indexPath needs to know).
func (r *reader) debList(p *Package, info string) error {
	for _, name := range []string{p.Name + ":" + p.Arch, p.Name} {
		list := path.Join(info, name+".list")
		f, err := r.openDB(list)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		defer f.Close()
		var listed []string
		err = eachLine(f, list, maxStanza, func(n int, line string) error {
			if line == "" {
				return nil
			}
			if line[0] != '/' {
				return syntaxError(list, n, "%.40q is not an absolute path", line)
			}
			if len(listed) >= maxOwned {
				return fmt.Errorf("reading %s: %w: more than %d paths", list, ErrTooMany, maxOwned)
			}
			listed = append(listed, path.Clean(line))
			return nil
		})
		if err != nil {
			return err
		}
		dirs := map[string]bool{}
		for _, l := range listed {
			dirs[path.Dir(l)] = true
		}
		for _, l := range listed {
			if err := r.ownListed(p, l, dirs[l]); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

// debMD5sums gives p the files a distroless status.d's NAME.md5sums lists ("HASH  path/from/the/root").
func (r *reader) debMD5sums(p *Package, sums string) error {
	f, err := r.openDB(sums)
	if f == nil {
		return err
	}
	defer f.Close()
	return eachLine(f, sums, maxStanza, func(n int, line string) error {
		if line == "" {
			return nil
		}
		_, file, ok := strings.Cut(line, "  ")
		if !ok || file == "" {
			return syntaxError(sums, n, "not \"HASH  PATH\": %.40q", line)
		}
		return r.ownListed(p, "/"+file, false)
	})
}

// debLicense is the licence /usr/share/doc/NAME/copyright states when it is machine-readable (DEP-5): its
// License fields' first lines (Debian's short names, "GPL-2+", which are not all SPDX identifiers), joined
// by joinLicenses. Any other copyright file, or none, is no licence: reading the licence out of free text is
// guesswork.
func (r *reader) debLicense(name string) string {
	b, err := r.tree.ReadFile(path.Join("/usr/share/doc", name, "copyright"))
	if err != nil {
		return ""
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if !dep5.Match(first) {
		return ""
	}
	var ls []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "License:"); ok {
			ls = append(ls, v)
		}
	}
	return joinLicenses(ls)
}
