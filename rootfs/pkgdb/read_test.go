package pkgdb

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/rootfs"
)

// pkgLine is what a test compares of a package: "PURL licence db: file file ...".
func pkgLine(p *Package) string {
	return fmt.Sprintf("%s %q %s: %s", p.PURL, p.License, p.DB, strings.Join(p.Files, " "))
}

func checkSet(t *testing.T, s *Set, want []string) {
	t.Helper()
	var got []string
	for _, p := range s.Packages {
		got = append(got, pkgLine(p))
	}
	if !slices.Equal(got, want) {
		t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const dep5Bash = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: bash\n\n" +
	"Files: *\nCopyright: 1987-2022 Free Software Foundation, Inc.\nLicense: GPL-3+\n\n" +
	"Files: lib/readline/*\nCopyright: 1987-2022 Free Software Foundation, Inc.\nLicense: GPL-2+ or Artistic\n\n" +
	"Files: doc/*\nLicense: GPL-3+\n\nLicense: GPL-3+\n This program is free software.\n"

// TestReadDpkg: installed and held packages only, in name order; a Multi-Arch: same package's NAME:ARCH.list;
// merged-usr paths resolved to the index's (/lib/x.so is /usr/lib/x.so, the /lib symlink no one's, but a
// symlink a package ships its own); paths the image does not have left out; a DEP-5 copyright's licences,
// a free-text one none; Source with and without a version; the PURL as syft writes it. dpkg-query, reading the same database, lists the same packages.
func TestReadDpkg(t *testing.T) {
	const admin = "/var/lib/dpkg"
	status := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\nVersion: 2.36-9+deb12u4\n" +
		"Description: GNU C Library\n with a continuation\n .\n and a paragraph\n\n" +
		"Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1.0\n\n\n" +
		"Package: bash\nStatus: hold ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nConffiles:\n /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d\n\n" +
		"Package: default-jre\nStatus: install ok installed\nArchitecture: amd64\nSource: java-common (0.74)\nVersion: 2:1.17-74\n\n" +
		"Package: halfdone\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 1\n\n" +
		"Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n"
	tree := synthTree(t, []string{admin + "/updates", "/usr/lib/jvm/java-17"}, map[string]string{
		"/etc/os-release":                     "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
		"/etc/debian_version":                 "12.4\n",
		"/etc/bash.bashrc":                    "# bashrc\n",
		"/usr/lib/x86_64-linux-gnu/libc.so.6": "\x7fELF libc",
		"/usr/bin/bash":                       "\x7fELF bash",
		"/usr/share/doc/bash/copyright":       dep5Bash,
		"/usr/share/doc/libc6/copyright":      "This is the Debian prepackaged version of the GNU C Library.\nLicense: LGPL-2.1\n",
		"/usr/share/zoneinfo/UTC":             "TZif",
		admin + "/status":                     status,
		admin + "/info/libc6:amd64.list":      lines("/.", "/lib", "/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/gone.so", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/libc6", "/usr/share/doc/libc6/copyright"),
		admin + "/info/libc6.list":            lines("/not/this/one"),
		admin + "/info/bash.list":             lines("/.", "/bin", "/bin/bash", "/etc", "/etc/bash.bashrc", "/usr/share/doc/bash/copyright"),
		admin + "/info/default-jre.list":      lines("/usr/lib/jvm", "/usr/lib/jvm/default-java"),
		admin + "/info/oldpkg.list":           lines("/etc/bash.bashrc"),
		admin + "/info/tzdata.list":           lines("/usr/share/zoneinfo", "/usr/share/zoneinfo/UTC"),
	}, map[string]string{"/lib": "usr/lib", "/bin": "usr/bin", "/usr/lib/jvm/default-java": "java-17"})
	s, err := Read(tree)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12.4 "(GPL-2+ or Artistic) AND GPL-3+" /var/lib/dpkg/status: / /etc /etc/bash.bashrc /usr/bin /usr/bin/bash /usr/share/doc/bash/copyright`,
		`pkg:deb/debian/default-jre@2%3A1.17-74?arch=amd64&distro=debian-12.4&upstream=java-common%400.74 "" /var/lib/dpkg/status: /usr/lib/jvm /usr/lib/jvm/default-java`,
		`pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.4&upstream=glibc "" /var/lib/dpkg/status: / /usr /usr/lib /usr/lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/share /usr/share/doc /usr/share/doc/libc6 /usr/share/doc/libc6/copyright`,
		`pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12.4 "" /var/lib/dpkg/status: /usr/share/zoneinfo /usr/share/zoneinfo/UTC`,
	})
	if libc := s.Packages[2]; libc.Source != "glibc" || libc.SourceVersion != "" || s.Packages[1].Source != "java-common" || s.Packages[1].SourceVersion != "0.74" {
		t.Errorf("sources: %+v, %+v", libc, s.Packages[1])
	}
	if o := s.Owners("/usr/lib/x86_64-linux-gnu/libc.so.6"); len(o) != 1 || o[0].Name != "libc6" {
		t.Errorf("owners of libc.so.6: %v", o)
	}
	if o := s.Owners("/lib"); len(o) != 0 {
		t.Errorf("the /lib symlink is owned by %v", o)
	}
	if o := s.Owners("/"); len(o) != 2 {
		t.Errorf("owners of /: %v", o)
	}

	// dpkg-query agrees on what is installed (status ii or hi).
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(tree.Dir, admin), "-W", "-f=${db:Status-Abbrev} ${Package} ${Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var installed []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && (f[0] == "ii" || f[0] == "hi") {
			installed = append(installed, f[1]+" "+f[2])
		}
	}
	var read []string
	for _, p := range s.Packages {
		read = append(read, p.Name+" "+p.Version)
	}
	if slices.Sort(installed); !slices.Equal(read, installed) {
		t.Errorf("Read lists %q, dpkg-query %q", read, installed)
	}
}

// TestReadMatchesPruneFixture: Read on the tree Prune's tests are made on gives the packages they expect of
// it (names, architectures, versions, files).
func TestReadMatchesPruneFixture(t *testing.T) {
	tree, want, _ := dpkgImage(t)
	got, err := Read(tree)
	if err != nil {
		t.Fatal(err)
	}
	line := func(p *Package) string {
		return fmt.Sprintf("%s:%s %s %s: %s", p.Name, p.Arch, p.Version, p.DB, strings.Join(p.Files, " "))
	}
	var g, w []string
	for _, p := range got.Packages {
		g = append(g, line(p))
	}
	for _, p := range want.Packages {
		w = append(w, line(p))
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("Read:\n%s\nPrune's tests expect:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// TestReadDistroless: a distroless image's status.d, a file of one stanza a package with its md5sums beside
// it and no Status field; no os-release: the namespace is debian, no distro qualifier.
func TestReadDistroless(t *testing.T) {
	tree := synthTree(t, nil, map[string]string{
		"/var/lib/dpkg/status.d/libssl3":         "Package: libssl3\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n",
		"/var/lib/dpkg/status.d/libssl3.md5sums": "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libssl.so.3\n0123456789abcdef0123456789abcdef  usr/lib/gone\n",
		"/var/lib/dpkg/status.d/tzdata":          "Package: tzdata\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
		"/usr/lib/x86_64-linux-gnu/libssl.so.3":  "\x7fELF",
	}, nil)
	s, err := Read(tree)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl "" /var/lib/dpkg/status.d/libssl3: /usr/lib/x86_64-linux-gnu/libssl.so.3`,
		`pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all "" /var/lib/dpkg/status.d/tzdata: `,
	})
}

// TestReadApk: apk's installed database: F: directories and R: files (before any F:, in the root), the
// origin an upstream qualifier when it is another name, the licence, the distro from os-release.
func TestReadApk(t *testing.T) {
	const db = "/lib/apk/db/installed"
	installed := "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:383152\nL:MIT\no:musl\nm:Natanael Copa\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1xyz=\nR:libc.musl-x86_64.so.1\n\n" +
		"P:busybox-binsh\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\nR:gone\n\nP:alpine-baselayout-data\nV:3.6.5-r0\nA:x86_64\nR:rootfile\n"
	tree := synthTree(t, nil, map[string]string{
		"/etc/os-release":          "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
		db:                         installed,
		"/lib/ld-musl-x86_64.so.1": "\x7fELF",
		"/bin/busybox":             "\x7fELF",
		"/rootfile":                "x",
	}, map[string]string{"/lib/libc.musl-x86_64.so.1": "ld-musl-x86_64.so.1", "/bin/sh": "/bin/busybox"})
	s, err := Read(tree)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`pkg:apk/alpine/alpine-baselayout-data@3.6.5-r0?arch=x86_64&distro=alpine-3.20.3 "" /lib/apk/db/installed: /rootfile`,
		`pkg:apk/alpine/busybox-binsh@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3&upstream=busybox "GPL-2.0-only" /lib/apk/db/installed: /bin /bin/sh`,
		`pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3 "MIT" /lib/apk/db/installed: /lib /lib/ld-musl-x86_64.so.1 /lib/libc.musl-x86_64.so.1`,
	})
}

// jarFile is a zip of the named entries, deflated.
func jarFile(t *testing.T, entries ...string) string {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for i := 0; i+1 < len(entries); i += 2 {
		w, err := z.Create(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(entries[i+1]))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestReadLanguages: Python dist-info (RECORD's relative, ../ and quoted paths) and egg-info (a directory
// with top_level.txt or installed-files.txt, a file), node packages (scoped, in Debian's /usr/share/nodejs,
// a nested node_modules being another package's, a package.json of no package, one module in two places
// being one package), gems (a default one, a platform one with its extension), jars' pom.properties (two in
// a shaded jar, none in another); metadata that does not parse is said in Unreadable, with its line.
func TestReadLanguages(t *testing.T) {
	const site = "/usr/local/lib/python3.11/site-packages"
	const nm = "/app/node_modules"
	const gems = "/var/lib/gems/3.1.0"
	tree := synthTree(t, []string{nm + "/express/node_modules/debug/empty"}, map[string]string{
		site + "/Flask_Login-0.6.3.dist-info/METADATA":                "Metadata-Version: 2.1\nName: Flask_Login\nVersion: 0.6.3\nLicense: MIT\nClassifier: A\nClassifier: B\n\nLicense: not-this\n",
		site + "/Flask_Login-0.6.3.dist-info/RECORD":                  "flask_login/__init__.py,sha256=x,10\n\"flask_login/a,b.py\",,\n../../../bin/flask-login,,\nFlask_Login-0.6.3.dist-info/RECORD,,\n",
		site + "/flask_login/__init__.py":                             "",
		site + "/flask_login/a,b.py":                                  "",
		site + "/flask_login/unlisted.py":                             "",
		"/usr/local/bin/flask-login":                                  "#!/usr/bin/python3",
		site + "/six-1.16.0.egg-info/PKG-INFO":                        "Name: six\nVersion: 1.16.0\nLicense: MIT License\n Permission is hereby granted\n",
		site + "/six-1.16.0.egg-info/top_level.txt":                   "six\n",
		site + "/six.py":                                              "",
		site + "/attrs-23.1.0.egg-info/PKG-INFO":                      "Name: attrs\nVersion: 23.1.0\nLicense-Expression: MIT\n",
		site + "/attrs-23.1.0.egg-info/installed-files.txt":           "../attr/__init__.py\n",
		site + "/attr/__init__.py":                                    "",
		site + "/distutils_pkg-1.0.egg-info":                          "Metadata-Version: 1.0\nName: distutils-pkg\nVersion: 1.0\n",
		site + "/broken-1.0.dist-info/METADATA":                       "Name: broken\n",
		nm + "/express/package.json":                                  `{"name": "express", "version": "4.18.2", "license": "MIT"}`,
		nm + "/express/lib/express.js":                                "",
		nm + "/express/lib/package.json":                              `{"type": "commonjs"}`,
		nm + "/express/node_modules/debug/package.json":               `{"name": "debug", "version": "2.6.9", "licenses": [{"type": "MIT"}]}`,
		nm + "/debug/package.json":                                    `{"name": "debug", "version": "2.6.9", "license": {"type": "MIT"}}`,
		nm + "/debug/src/index.js":                                    "",
		nm + "/@babel/core/package.json":                              `{"name": "@babel/core", "version": "7.20.12", "license": "MIT"}`,
		nm + "/broken/package.json":                                   "{\n  \"name\": \"broken\",\n  \"version\": 1\n}",
		"/usr/share/nodejs/ms/package.json":                           `{"name": "ms", "version": "2.1.3"}`,
		"/usr/share/nodejs/ms/index.js":                               "",
		gems + "/specifications/rack-2.2.4.gemspec":                   "# stub: rack 2.2.4 ruby lib\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"2.2.4\"\n  s.licenses = [\"MIT\".freeze]\nend\n",
		gems + "/gems/rack-2.2.4/lib/rack.rb":                         "",
		gems + "/cache/rack-2.2.4.gem":                                "gem",
		gems + "/specifications/nokogiri-1.15.4-x86_64-linux.gemspec": "Gem::Specification.new do |spec|\n  spec.name = 'nokogiri'\n  spec.version = '1.15.4'\n  spec.license = 'MIT'\nend\n",
		gems + "/gems/nokogiri-1.15.4-x86_64-linux/lib/nokogiri.rb":   "",
		gems + "/extensions/x86_64-linux/3.1.0/nokogiri-1.15.4-x86_64-linux/gem.build_complete": "",
		gems + "/specifications/default/json-2.6.1.gemspec":                                     "# stub: json 2.6.1 ruby lib\n# generated, no literal fields\n",
		gems + "/gems/json-2.6.1/lib/json.rb":                                                   "",
		gems + "/specifications/dynamic-1.0.gemspec":                                            "Gem::Specification.new do |s|\n  s.name = NAME\nend\n",
		"/app/lib/shaded.jar": jarFile(t, "META-INF/maven/com.google.guava/guava/pom.properties", "#Generated\ngroupId=com.google.guava\nartifactId=guava\nversion=32.1.2-jre\n",
			"META-INF/maven/org.slf4j/slf4j-api/pom.properties", "version: 2.0.9\ngroupId: org.slf4j\nartifactId: slf4j-api\n", "META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"),
		"/app/plain.war":   jarFile(t, "WEB-INF/web.xml", "<web-app/>"),
		"/app/notazip.jar": "not a zip",
	}, map[string]string{"/usr/share/node_modules": "nodejs"})
	s, err := Read(tree)
	if err != nil {
		t.Fatal(err)
	}
	checkSet(t, s, []string{
		`pkg:gem/json@2.6.1 "" /var/lib/gems/3.1.0/specifications/default/json-2.6.1.gemspec: /var/lib/gems/3.1.0/gems/json-2.6.1 /var/lib/gems/3.1.0/gems/json-2.6.1/lib /var/lib/gems/3.1.0/gems/json-2.6.1/lib/json.rb /var/lib/gems/3.1.0/specifications/default/json-2.6.1.gemspec`,
		`pkg:gem/nokogiri@1.15.4 "MIT" /var/lib/gems/3.1.0/specifications/nokogiri-1.15.4-x86_64-linux.gemspec: /var/lib/gems/3.1.0/extensions/x86_64-linux/3.1.0/nokogiri-1.15.4-x86_64-linux /var/lib/gems/3.1.0/extensions/x86_64-linux/3.1.0/nokogiri-1.15.4-x86_64-linux/gem.build_complete /var/lib/gems/3.1.0/gems/nokogiri-1.15.4-x86_64-linux /var/lib/gems/3.1.0/gems/nokogiri-1.15.4-x86_64-linux/lib /var/lib/gems/3.1.0/gems/nokogiri-1.15.4-x86_64-linux/lib/nokogiri.rb /var/lib/gems/3.1.0/specifications/nokogiri-1.15.4-x86_64-linux.gemspec`,
		`pkg:gem/rack@2.2.4 "MIT" /var/lib/gems/3.1.0/specifications/rack-2.2.4.gemspec: /var/lib/gems/3.1.0/cache/rack-2.2.4.gem /var/lib/gems/3.1.0/gems/rack-2.2.4 /var/lib/gems/3.1.0/gems/rack-2.2.4/lib /var/lib/gems/3.1.0/gems/rack-2.2.4/lib/rack.rb /var/lib/gems/3.1.0/specifications/rack-2.2.4.gemspec`,
		`pkg:maven/com.google.guava/guava@32.1.2-jre "" /app/lib/shaded.jar!/META-INF/maven/com.google.guava/guava/pom.properties: /app/lib/shaded.jar`,
		`pkg:maven/org.slf4j/slf4j-api@2.0.9 "" /app/lib/shaded.jar!/META-INF/maven/org.slf4j/slf4j-api/pom.properties: /app/lib/shaded.jar`,
		`pkg:npm/%40babel/core@7.20.12 "MIT" /app/node_modules/@babel/core/package.json: /app/node_modules/@babel/core /app/node_modules/@babel/core/package.json`,
		`pkg:npm/debug@2.6.9 "MIT" /app/node_modules/debug/package.json: /app/node_modules/debug /app/node_modules/debug/package.json /app/node_modules/debug/src /app/node_modules/debug/src/index.js /app/node_modules/express/node_modules/debug /app/node_modules/express/node_modules/debug/empty /app/node_modules/express/node_modules/debug/package.json`,
		`pkg:npm/express@4.18.2 "MIT" /app/node_modules/express/package.json: /app/node_modules/express /app/node_modules/express/lib /app/node_modules/express/lib/express.js /app/node_modules/express/lib/package.json /app/node_modules/express/package.json`,
		`pkg:npm/ms@2.1.3 "" /usr/share/nodejs/ms/package.json: /usr/share/nodejs/ms /usr/share/nodejs/ms/index.js /usr/share/nodejs/ms/package.json`,
		`pkg:pypi/attrs@23.1.0 "MIT" /usr/local/lib/python3.11/site-packages/attrs-23.1.0.egg-info: /usr/local/lib/python3.11/site-packages/attr/__init__.py /usr/local/lib/python3.11/site-packages/attrs-23.1.0.egg-info /usr/local/lib/python3.11/site-packages/attrs-23.1.0.egg-info/PKG-INFO /usr/local/lib/python3.11/site-packages/attrs-23.1.0.egg-info/installed-files.txt`,
		`pkg:pypi/distutils-pkg@1.0 "" /usr/local/lib/python3.11/site-packages/distutils_pkg-1.0.egg-info: /usr/local/lib/python3.11/site-packages/distutils_pkg-1.0.egg-info`,
		`pkg:pypi/flask-login@0.6.3 "MIT" /usr/local/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info: /usr/local/bin/flask-login /usr/local/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info /usr/local/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/METADATA /usr/local/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/RECORD /usr/local/lib/python3.11/site-packages/flask_login/__init__.py /usr/local/lib/python3.11/site-packages/flask_login/a,b.py`,
		`pkg:pypi/six@1.16.0 "" /usr/local/lib/python3.11/site-packages/six-1.16.0.egg-info: /usr/local/lib/python3.11/site-packages/six-1.16.0.egg-info /usr/local/lib/python3.11/site-packages/six-1.16.0.egg-info/PKG-INFO /usr/local/lib/python3.11/site-packages/six-1.16.0.egg-info/top_level.txt /usr/local/lib/python3.11/site-packages/six.py`,
	})
	wantUnreadable := []string{
		"parsing /app/node_modules/broken/package.json: line 3: invalid package database: json: cannot unmarshal number into Go struct field .version of type string",
		"reading /app/notazip.jar: zip: not a valid zip file",
		"parsing /usr/local/lib/python3.11/site-packages/broken-1.0.dist-info/METADATA: invalid package database: no valid Name and Version fields (\"broken\", \"\")",
		"parsing /var/lib/gems/3.1.0/specifications/dynamic-1.0.gemspec: invalid package database: no literal name and version (\"\", \"\")",
	}
	if !slices.Equal(s.Unreadable, wantUnreadable) {
		t.Errorf("unreadable:\n%s\nwant:\n%s", strings.Join(s.Unreadable, "\n"), strings.Join(wantUnreadable, "\n"))
	}
	if o := s.Owners(nm + "/express/node_modules/debug/package.json"); len(o) != 1 || o[0].Name != "debug" {
		t.Errorf("owners of the nested debug: %v", o)
	}
}

// TestUsage: kept and dropped counts and bytes per package (directories not counted, symlinks counted with
// no bytes, a file of two packages counted for both), sorted by dropped bytes then PURL; a Set made by hand
// (no owners map) answers Owners too.
func TestUsage(t *testing.T) {
	tree := synthTree(t, []string{"/d"}, map[string]string{"/d/big": strings.Repeat("x", 100), "/d/small": "xy", "/d/shared": "12345"},
		map[string]string{"/d/link": "big"})
	a := &Package{PURL: "pkg:generic/a", Files: []string{"/d", "/d/big", "/d/link", "/d/shared"}}
	b := &Package{PURL: "pkg:generic/b", Files: []string{"/d", "/d/small", "/d/shared"}}
	c := &Package{PURL: "pkg:generic/c", Files: []string{"/d/small", "/not/in/the/image"}}
	keep := map[string][]string{"/d": {"parent"}, "/d/link": {"observed"}, "/d/shared": {"observed"}, "/d/small": nil}
	for _, s := range []*Set{NewSet([]*Package{a, b, c}), {Packages: []*Package{a, b, c}}} {
		got := s.Usage(tree.Index, keep)
		want := []Usage{
			{Package: a, KeptFiles: 2, KeptBytes: 5, DroppedFiles: 1, DroppedBytes: 100},
			{Package: b, KeptFiles: 1, KeptBytes: 5, DroppedFiles: 1, DroppedBytes: 2},
			{Package: c, DroppedFiles: 1, DroppedBytes: 2},
		}
		if !slices.Equal(got, want) {
			t.Errorf("usage %+v\nwant %+v", got, want)
		}
		if o := s.Owners("/d/shared"); !slices.Equal(o, []*Package{a, b}) {
			t.Errorf("owners of /d/shared: %v", o)
		}
	}
}

// TestReadHostile: databases an attacker wrote. Each fails with a one-line error naming the file (and the
// line, where there is one), or is read within the tree: a path naming ../ or through a symlink out of the
// tree is the tree's own path, a database that is a symlink out of it reads the tree's file.
func TestReadHostile(t *testing.T) {
	const status = "/var/lib/dpkg/status"
	const installed = "Status: install ok installed\nArchitecture: amd64\nVersion: 1\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		links map[string]string
		// err is what the error must say, with errIs matching it; or, when empty, pkgs are the packages read.
		err   string
		errIs error
		pkgs  []string
	}{
		{name: "not a field", files: map[string]string{status: "Package: a\n" + installed + "\ngarbage without a colon\n"},
			err: "parsing /var/lib/dpkg/status: line 6: invalid package database: not a field: \"garbage without a colon\"", errIs: ErrDatabase},
		{name: "continuation first", files: map[string]string{status: " continued\nPackage: a\n"},
			err: "parsing /var/lib/dpkg/status: line 1: invalid package database: a continuation line with no field before it", errIs: ErrDatabase},
		{name: "huge stanza", files: map[string]string{status: "Package: a\n" + installed + "Description: x\n" + strings.Repeat(" more\n", maxStanza/6)},
			err: "parsing /var/lib/dpkg/status: line 174754: invalid package database: a stanza (from line 1) longer than 1048576 bytes", errIs: ErrDatabase},
		{name: "huge line", files: map[string]string{status: "Package: a\nDescription: " + strings.Repeat("x", maxStanza+1) + "\n"},
			err: "parsing /var/lib/dpkg/status: line 2: invalid package database: a line longer than 1048576 bytes", errIs: ErrDatabase},
		{name: "no trailing newline", files: map[string]string{status: "Package: a\n" + strings.TrimSuffix(installed, "\n")}, pkgs: []string{"a: "}},
		{name: "no Package", files: map[string]string{status: installed},
			err: "parsing /var/lib/dpkg/status: line 1: invalid package database: a stanza with no Package field", errIs: ErrDatabase},
		{name: "no Version", files: map[string]string{status: "Package: a\nStatus: install ok installed\n"},
			err: "parsing /var/lib/dpkg/status: line 1: invalid package database: package a has no version or a bad one (\"\")", errIs: ErrDatabase},
		{name: "twice", files: map[string]string{status: "Package: a\n" + installed + "\nPackage: a\n" + installed},
			err: "parsing /var/lib/dpkg/status: line 6: invalid package database: package a:amd64 listed again (first at line 1)", errIs: ErrDatabase},
		{name: "field twice", files: map[string]string{status: "Package: a\nPackage: b\n" + installed},
			err: "parsing /var/lib/dpkg/status: line 2: invalid package database: field Package given twice", errIs: ErrDatabase},
		{name: "a name that is a path", files: map[string]string{status: "Package: ../../../etc/shadow\n" + installed},
			err: "parsing /var/lib/dpkg/status: line 1: invalid package database: \"../../../etc/shadow\" is not a package name", errIs: ErrDatabase},
		{name: "relative path in a list", files: map[string]string{status: "Package: a\n" + installed, "/var/lib/dpkg/info/a.list": "/.\n../../etc/shadow\n"},
			err: "parsing /var/lib/dpkg/info/a.list: line 2: invalid package database: \"../../etc/shadow\" is not an absolute path", errIs: ErrDatabase},
		{name: "dot-dot in a list", files: map[string]string{status: "Package: a\n" + installed, "/var/lib/dpkg/info/a.list": "/../../../etc/shadow\n", "/etc/shadow": "the tree's"},
			pkgs: []string{"a: /etc/shadow"}},
		{name: "list through a symlink out of the tree", files: map[string]string{status: "Package: a\n" + installed, "/var/lib/dpkg/info/a.list": "/usr/lib/evil/passwd\n/usr/lib/abs/passwd\n", "/etc/passwd": "the tree's"},
			links: map[string]string{"/usr/lib/evil": "../../../../../../etc", "/usr/lib/abs": "/etc"},
			pkgs:  []string{"a: /etc/passwd"}},
		{name: "status a symlink out of the tree", files: map[string]string{"/etc/shadow": "Package: fromthetree\n" + installed},
			links: map[string]string{status: "../../../../../../../etc/shadow"}, pkgs: []string{"fromthetree: "}},
		{name: "list a symlink loop", files: map[string]string{status: "Package: a\n" + installed}, links: map[string]string{"/var/lib/dpkg/info/a.list": "a.list"},
			err: "open /var/lib/dpkg/info/a.list: too many levels of symbolic links"},
		{name: "a loop on a listed path", files: map[string]string{status: "Package: a\n" + installed, "/var/lib/dpkg/info/a.list": "/loop/x\n/ok\n", "/ok": ""},
			links: map[string]string{"/loop": "loop"}, pkgs: []string{"a: /ok"}},
		{name: "status a directory", files: map[string]string{status + "/x": ""},
			err: "opening /var/lib/dpkg/status: not a regular file: it is a directory", errIs: rootfs.ErrNotRegular},
		{name: "apk not K:V", files: map[string]string{apkInstalled: "P:a\nV:1\nPkgname a\n"},
			err: "parsing /lib/apk/db/installed: line 3: invalid package database: not a \"K:value\" line: \"Pkgname a\"", errIs: ErrDatabase},
		{name: "apk no version", files: map[string]string{apkInstalled: "P:a\n\nP:b\nV:1"},
			err: "parsing /lib/apk/db/installed: line 1: invalid package database: a package with no P: name or V: version", errIs: ErrDatabase},
		{name: "apk file through ..", files: map[string]string{apkInstalled: "P:a\nV:1\nF:../../etc\nR:shadow\n", "/etc/shadow": ""},
			pkgs: []string{"a: /etc /etc/shadow"}},
		{name: "long version", files: map[string]string{status: "Package: a\nStatus: install ok installed\nVersion: " + strings.Repeat("1", maxField+1) + "\n"},
			err: "reading /var/lib/dpkg/status: invalid package database: a name or version of 4097 bytes", errIs: ErrDatabase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := synthTree(t, nil, tc.files, tc.links)
			s, err := Read(tree)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Fatalf("error %v\nwant %s (matching %v)", err, tc.err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range s.Packages {
				got = append(got, p.Name+": "+strings.Join(p.Files, " "))
			}
			if !slices.Equal(got, tc.pkgs) {
				t.Errorf("packages %q, want %q", got, tc.pkgs)
			}
		})
	}
}

// TestReadHostileFiles: what a tree an ordinary user makes cannot hold in synthTree: a status that is a
// FIFO (Read must not wait for a writer) or larger than Read reads (a sparse file: nothing is read).
func TestReadHostileFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		make  func(p string) (*rootfs.Entry, error)
		err   string
		errIs error
	}{
		{name: "fifo", make: func(p string) (*rootfs.Entry, error) {
			return &rootfs.Entry{Type: rootfs.TypeFifo, Mode: 0o644}, mkfifo(p)
		}, err: "opening /var/lib/dpkg/status: not a regular file: it is a FIFO", errIs: rootfs.ErrNotRegular},
		{name: "too large", make: func(p string) (*rootfs.Entry, error) {
			f, err := os.Create(p)
			if err == nil {
				err = f.Truncate(maxDBFile + 1)
				f.Close()
			}
			return &rootfs.Entry{Type: rootfs.TypeFile, Mode: 0o644, Size: maxDBFile + 1}, err
		}, err: "reading /var/lib/dpkg/status: 64 MiB is over the 64 MiB limit", errIs: rootfs.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := synthTree(t, []string{"/var/lib/dpkg"}, nil, nil)
			e, err := tc.make(filepath.Join(tree.Dir, "var/lib/dpkg/status"))
			if err != nil {
				t.Fatal(err)
			}
			e.Path = "/var/lib/dpkg/status"
			tree.Index.Add(e)
			_, err = Read(tree)
			if err == nil || err.Error() != tc.err || !errors.Is(err, tc.errIs) {
				t.Fatalf("error %v\nwant %s", err, tc.err)
			}
		})
	}
}

func mkfifo(p string) error { return unix.Mkfifo(p, 0o644) }

// TestReadLimits: what Read keeps is bounded whatever the image says. More packages than maxPackages, or
// more owned paths than maxOwned, fail with ErrTooMany (the limits lowered here: the real ones want
// databases of hundreds of megabytes); a zip bomb's pom.properties, a jar with more central directory than
// Read reads, and a jar with more pom.properties than it reads are said in Unreadable, and reading them
// allocates a few MiB, not what they claim.
func TestReadLimits(t *testing.T) {
	t.Run("packages", func(t *testing.T) {
		defer func(n int) { maxPackages = n }(maxPackages)
		maxPackages = 3
		var st []string
		for i := range 4 {
			st = append(st, fmt.Sprintf("Package: p%d\nStatus: install ok installed\nVersion: 1\n", i))
		}
		_, err := Read(synthTree(t, nil, map[string]string{"/var/lib/dpkg/status": strings.Join(st, "\n")}, nil))
		if !errors.Is(err, ErrTooMany) || err.Error() != "reading /var/lib/dpkg/status: too many packages: more than 3" {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("owned paths", func(t *testing.T) {
		defer func(n int) { maxOwned = n }(maxOwned)
		maxOwned = 3
		_, err := Read(synthTree(t, nil, map[string]string{
			"/var/lib/dpkg/status":      "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nVersion: 1\n",
			"/var/lib/dpkg/info/a.list": lines("/a", "/b"),
			"/var/lib/dpkg/info/b.list": lines("/c", "/d"),
			"/a":                        "", "/b": "", "/c": "", "/d": "",
		}, nil))
		if !errors.Is(err, ErrTooMany) || err.Error() != "reading /var/lib/dpkg/status: too many packages: more than 3 paths owned" {
			t.Fatalf("error %v", err)
		}
	})

	// A bomb: 1 GiB of zeros, deflated to about 1 MiB.
	var bomb bytes.Buffer
	z := zip.NewWriter(&bomb)
	w, err := z.Create("META-INF/maven/evil/bomb/pom.properties")
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 1 << 10 {
		w.Write(zeros)
	}
	z.Close()
	// A central directory of 10 MiB: 100000 entries with long names.
	var wide bytes.Buffer
	z = zip.NewWriter(&wide)
	for i := range 100_000 {
		if _, err := z.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%060d", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	z.Close()
	var poms []string
	for i := range maxPoms + 1 {
		poms = append(poms, fmt.Sprintf("META-INF/maven/g/a%d/pom.properties", i), fmt.Sprintf("groupId=g\nartifactId=a%d\nversion=1\n", i))
	}
	tree := synthTree(t, nil, map[string]string{"/bomb.jar": bomb.String(), "/wide.jar": wide.String(), "/poms.jar": jarFile(t, poms...)}, nil)

	// The budget is for the central directory alone: with what is left of it after zip.NewReader a few
	// bytes, the pom.properties are read all the same.
	t.Run("budget", func(t *testing.T) {
		defer func(n int64) { jarBudget = n }(jarBudget)
		jar := jarFile(t, "META-INF/maven/g/a/pom.properties", "groupId=g\nartifactId=a\nversion=1\n")
		count := &budgetReaderAt{r: strings.NewReader(jar), left: 1 << 30}
		if _, err := zip.NewReader(count, int64(len(jar))); err != nil {
			t.Fatal(err)
		}
		jarBudget = 1<<30 - count.left + 10
		s, err := Read(synthTree(t, nil, map[string]string{"/a.jar": jar}, nil))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Packages) != 1 || len(s.Unreadable) != 0 {
			t.Fatalf("read %v, unreadable %q", s.Packages, s.Unreadable)
		}
	})

	var s *Set
	alloc := testbed.Allocated(func() { s, err = Read(tree) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"reading /bomb.jar!/META-INF/maven/evil/bomb/pom.properties: 1 GiB is over the 64 KiB limit",
		"reading /poms.jar: more than 256 pom.properties",
		"reading /wide.jar: more than the 8 MiB limit",
	}
	if !slices.Equal(s.Unreadable, want) {
		t.Errorf("unreadable %q\nwant %q", s.Unreadable, want)
	}
	if len(s.Packages) != maxPoms {
		t.Errorf("%d packages, want the %d pom.properties read before the limit", len(s.Packages), maxPoms)
	}
	if alloc > 64<<20 {
		t.Errorf("reading the jars allocated %d MiB", alloc>>20)
	}
	t.Logf("reading the jars allocated %.1f MiB", float64(alloc)/(1<<20))
}
