// Package pkgdb reads the package databases an unpacked image holds (dpkg, apk, and the language
// ecosystems' metadata: Python, node, Ruby, Java), says which package owns each path, and writes the
// databases cut down to what a slim image keeps, so that scanners see the packages it still ships.
package pkgdb

// The package types, as package URLs name them (https://github.com/package-url/purl-spec).
const (
	Deb   = "deb"
	Apk   = "apk"
	PyPI  = "pypi"
	Npm   = "npm"
	Gem   = "gem"
	Maven = "maven"
)

// Package is one installed package as its database describes it.
type Package struct {
	// Type is one of Deb, Apk, PyPI, Npm, Gem, Maven.
	Type string `json:"type"`
	// Namespace is the package URL's namespace: the distribution for deb and apk ("debian", "alpine"),
	// the group id for maven, the scope for npm ("@babel"); empty otherwise.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Arch is the architecture (deb, apk); Source and SourceVersion the source package (deb: Source:,
	// apk: origin), when the database names them.
	Arch          string `json:"arch,omitempty"`
	Source        string `json:"source,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// License is the licence as the database states it (an SPDX expression where it is one), or empty.
	License string `json:"license,omitempty"`
	// PURL is the package URL: pkg:deb/debian/libc6@2.36-9?arch=amd64.
	PURL string `json:"purl"`
	// DB is the database file or metadata directory the package was read from (/var/lib/dpkg/status,
	// /usr/lib/python3/dist-packages/flask-2.2.2.dist-info).
	DB string `json:"db"`
	// Files are the paths the package owns, as the image's index has them (each resolved through the
	// image's symlinked directories: dpkg's /lib/x.so is /usr/lib/x.so in a merged-usr image), sorted;
	// only paths the image has.
	Files []string `json:"-"`
}

// ID names the package uniquely in an image: its PURL.
func (p *Package) ID() string { return p.PURL }

// Set is every package an image's databases list.
type Set struct {
	Packages []*Package
	// Unreadable says which language packages' metadata Read skipped, and why ("parsing
	// /app/node_modules/x/package.json: line 3: ..."); at most 1000.
	Unreadable []string `json:"unreadable,omitempty"`
	// owners maps each path to the packages owning it (most often one; a directory is often shared).
	owners map[string][]*Package
}

// Usage is how much of a package a slim image keeps.
type Usage struct {
	Package                 *Package
	KeptFiles, DroppedFiles int
	KeptBytes, DroppedBytes int64
}
