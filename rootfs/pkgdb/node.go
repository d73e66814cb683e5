package pkgdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"path"
	"strings"
)

// nodePackageDir reports whether dir is where a node package is installed: NAME or @SCOPE/NAME in a
// node_modules directory, or in one of Debian's node directories (/usr/share/nodejs, /usr/lib/nodejs,
// /usr/lib/TRIPLET/nodejs; Debian's node_modules are symlinks to them).
func nodePackageDir(dir string) bool {
	root := path.Dir(dir)
	if strings.HasPrefix(path.Base(root), "@") {
		root = path.Dir(root)
	}
	if path.Base(root) == "node_modules" || root == "/usr/share/nodejs" || root == "/usr/lib/nodejs" {
		return true
	}
	ok, _ := path.Match("/usr/lib/*/nodejs", root)
	return ok
}

// node reads one node package's package.json (name, version, license). Its files are everything under its
// directory but what is under a nested node_modules (other packages, each with its own package.json). A
// package.json without a name or a version is no package (an app's own, a private workspace's).
func (r *reader) node(pj string) error {
	b, err := r.tree.ReadFile(pj)
	if err != nil {
		return err
	}
	var m struct {
		Name     string          `json:"name"`
		Version  string          `json:"version"`
		License  json.RawMessage `json:"license"`
		Licenses json.RawMessage `json:"licenses"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return jsonError(pj, b, err)
	}
	if m.Name == "" || m.Version == "" {
		return nil
	}
	p := &Package{Type: Npm, Name: m.Name, Version: m.Version, License: joinLicenses(npmLicenses(m.License, m.Licenses)), DB: pj}
	if strings.HasPrefix(m.Name, "@") {
		scope, name, ok := strings.Cut(m.Name, "/")
		if !ok || name == "" || strings.Contains(name, "/") {
			return syntaxError(pj, 1, "%.40q is not a package name", m.Name)
		}
		p.Namespace, p.Name = scope, name
	} else if strings.Contains(m.Name, "/") {
		return syntaxError(pj, 1, "%.40q is not a package name", m.Name)
	}
	if err := r.ownTree(p, path.Dir(pj), "node_modules"); err != nil {
		return err
	}
	return r.add(p)
}

// npmLicenses are the licences a package.json states: "license": "MIT" or {"type": "MIT"} (the old form),
// or "licenses": ["MIT"] or [{"type": "MIT"}]. Other shapes are none.
func npmLicenses(license, licenses json.RawMessage) []string {
	one := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var o struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &o) == nil {
			return o.Type
		}
		return ""
	}
	if l := one(license); l != "" {
		return []string{l}
	}
	var list []json.RawMessage
	if json.Unmarshal(licenses, &list) != nil {
		return nil
	}
	var out []string
	for _, raw := range list {
		out = append(out, one(raw))
	}
	return out
}

// jsonError is a JSON document's syntax or type error, with its line.
func jsonError(file string, b []byte, err error) error {
	off := int64(-1)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	line := 1
	if off >= 0 {
		line += bytes.Count(b[:min(off, int64(len(b)))], []byte("\n"))
	}
	return syntaxError(file, line, "%v", err)
}
