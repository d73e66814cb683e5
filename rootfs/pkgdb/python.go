package pkgdb

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/slimoci/slimoci/rootfs"
)

// pyName is a distribution name as PEP 508 allows it.
var pyName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// python reads one installed distribution's metadata: a NAME-VERSION.dist-info directory (METADATA, and
// RECORD for its files), or a NAME-VERSION.egg-info directory (PKG-INFO, and installed-files.txt or
// top_level.txt for its files) or file (PKG-INFO itself, as distutils wrote it). The metadata itself is the
// package's too.
//
// An egg-info's SOURCES.txt is not read: it lists the source tree's files (setup.py, src/flask/app.py), not
// what was installed, and where each went is guesswork; top_level.txt names the installed modules.
func (r *reader) python(e *rootfs.Entry) error {
	meta, dist := e.Path, strings.HasSuffix(e.Path, ".dist-info")
	if e.Type == rootfs.TypeDir {
		meta = path.Join(e.Path, "PKG-INFO")
		if dist {
			meta = path.Join(e.Path, "METADATA")
		}
	}
	b, err := r.tree.ReadFile(meta)
	if err != nil {
		return err
	}
	// The metadata is an RFC 822 header, then the description.
	var fields []field
	err = eachStanza(bytes.NewReader(b), meta, func(_ int, f []field) error {
		fields = f
		return errStop
	})
	if err != nil {
		return err
	}
	name, _ := get(fields, "Name")
	version, _ := get(fields, "Version")
	if !pyName.MatchString(name) || version == "" || strings.ContainsAny(version, " \t\n") {
		return fmt.Errorf("parsing %s: %w: no valid Name and Version fields (%.40q, %.40q)", meta, ErrDatabase, name, version)
	}
	p := &Package{Type: PyPI, Name: name, Version: version, License: pyLicense(fields), DB: e.Path}
	if err := r.ownTree(p, e.Path); err != nil {
		return err
	}
	site := path.Dir(e.Path)
	switch {
	case dist:
		err = r.pyRecord(p, path.Join(e.Path, "RECORD"), site)
	case e.Type == rootfs.TypeDir:
		err = r.eggFiles(p, e.Path, site)
	}
	if err != nil {
		return err
	}
	return r.add(p)
}

// pyLicense is a distribution's licence: License-Expression (PEP 639, SPDX), or a one-line License field
// ("BSD-3-Clause"); a License field holding the licence's whole text is none.
func pyLicense(fields []field) string {
	if v, ok := get(fields, "License-Expression"); ok && v != "" {
		return joinLicenses([]string{v})
	}
	if v, ok := get(fields, "License"); ok && !strings.Contains(v, "\n") && len(v) <= 100 {
		return joinLicenses([]string{v})
	}
	return ""
}

// pyRecord gives p the files its RECORD lists (CSV: path, hash, size; a path relative to site, the
// directory holding the dist-info, or absolute).
func (r *reader) pyRecord(p *Package, record, site string) error {
	f, err := r.openDB(record)
	if f == nil {
		return err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord, cr.ReuseRecord = -1, true
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return syntaxError(record, pe.Line, "%v", pe.Err)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", record, err)
		}
		if len(row) == 0 || row[0] == "" {
			continue
		}
		q := row[0]
		if !path.IsAbs(q) {
			q = path.Join(site, q)
		}
		if err := r.ownListed(p, q, false); err != nil {
			return err
		}
	}
}

// eggFiles gives p the files an egg-info's installed-files.txt lists (relative to the egg-info), or without
// one the modules its top_level.txt names (site/NAME and what is under it, site/NAME.py).
func (r *reader) eggFiles(p *Package, egg, site string) error {
	installed := path.Join(egg, "installed-files.txt")
	f, err := r.openDB(installed)
	if err != nil {
		return err
	}
	if f != nil {
		defer f.Close()
		return eachLine(f, installed, maxStanza, func(_ int, line string) error {
			if line == "" {
				return nil
			}
			return r.ownListed(p, path.Join(egg, line), false)
		})
	}
	top := path.Join(egg, "top_level.txt")
	b, err := r.tree.ReadFile(top)
	if notExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, name := range strings.Split(string(b), "\n") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if strings.Contains(name, "/") || name == "." || name == ".." {
			return syntaxError(top, i+1, "%.40q is not a module name", name)
		}
		for _, q := range []string{path.Join(site, name), path.Join(site, name+".py")} {
			if err := r.ownTree(p, q); err != nil {
				return err
			}
		}
	}
	return nil
}
