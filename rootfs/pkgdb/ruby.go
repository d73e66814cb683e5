package pkgdb

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// A gemspec is Ruby: Read does not run it. It takes what RubyGems writes for an installed gem, one
// assignment a line (s.name = "sinatra".freeze), or the "# stub: NAME VERSION" line RubyGems puts first.
var (
	gemName     = regexp.MustCompile(`^\s*\w+\.name\s*=\s*["']([^"']+)["']`)
	gemVersion  = regexp.MustCompile(`^\s*\w+\.version\s*=\s*["']([^"']+)["']`)
	gemLicenses = regexp.MustCompile(`^\s*\w+\.licenses?\s*=\s*(.*)$`)
	gemStub     = regexp.MustCompile(`^# stub: (\S+) (\S+)`)
	rubyString  = regexp.MustCompile(`["']([^"']+)["']`)
	// gemNameOK is a name RubyGems accepts.
	gemNameOK = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// gem reads an installed gem's specification, GEM_HOME/specifications/NAME-VERSION.gemspec (or
// specifications/default/ for a default gem): name, version, and licences when given as a literal list. Its
// files are the gemspec and what RubyGems installs beside it under the same NAME-VERSION[-PLATFORM]:
// gems/STEM/, extensions/*/*/STEM/, doc/STEM/, cache/STEM.gem, build_info/STEM.info. A gem Debian packages
// has none of those (its files are under /usr/lib/ruby/vendor_ruby): dpkg owns them.
func (r *reader) gem(spec string) error {
	b, err := r.tree.ReadFile(spec)
	if err != nil {
		return err
	}
	var name, version, stubName, stubVersion string
	var licenses []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := gemStub.FindStringSubmatch(line); m != nil && stubName == "" {
			stubName, stubVersion = m[1], m[2]
		} else if m := gemName.FindStringSubmatch(line); m != nil && name == "" {
			name = m[1]
		} else if m := gemVersion.FindStringSubmatch(line); m != nil && version == "" {
			version = m[1]
		} else if m := gemLicenses.FindStringSubmatch(line); m != nil && licenses == nil {
			for _, l := range rubyString.FindAllStringSubmatch(m[1], -1) {
				licenses = append(licenses, l[1])
			}
		}
	}
	if name == "" || version == "" {
		name, version = stubName, stubVersion
	}
	if !gemNameOK.MatchString(name) || version == "" || strings.ContainsAny(version, " \t") {
		return fmt.Errorf("parsing %s: %w: no literal name and version (%.40q, %.40q)", spec, ErrDatabase, name, version)
	}
	p := &Package{Type: Gem, Name: name, Version: version, License: joinLicenses(licenses), DB: spec}
	specs := path.Dir(spec)
	if path.Base(specs) == "default" {
		specs = path.Dir(specs)
	}
	home, stem := path.Dir(specs), strings.TrimSuffix(path.Base(spec), ".gemspec")
	if err := r.own(p, spec); err != nil {
		return err
	}
	owned := []string{path.Join(home, "gems", stem), path.Join(home, "doc", stem), path.Join(home, "cache", stem+".gem"),
		path.Join(home, "build_info", stem+".info")}
	for _, platform := range r.ix.Children(path.Join(home, "extensions")) {
		for _, api := range r.ix.Children(path.Join(home, "extensions", platform)) {
			owned = append(owned, path.Join(home, "extensions", platform, api, stem))
		}
	}
	for _, q := range owned {
		if err := r.ownTree(p, q); err != nil {
			return err
		}
	}
	return r.add(p)
}
