package pkgdb

import (
	"crypto/md5"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slimoci/slimoci/rootfs"
)

// synthTree is a tree an ordinary user makes in a temporary directory (no root: the owners are the
// index's), its index built by hand: files maps paths to contents, links symlinks to their targets, dirs
// adds directories; the directories above them are made.
func synthTree(t *testing.T, dirs []string, files, links map[string]string) *rootfs.Tree {
	t.Helper()
	dir := t.TempDir()
	ix := rootfs.NewIndex()
	ix.Add(&rootfs.Entry{Path: "/", Type: rootfs.TypeDir, Mode: 0o755})
	addDir := func(p string) {
		for d := p; d != "/"; d = path.Dir(d) {
			if _, ok := ix.Lookup(d); !ok {
				ix.Add(&rootfs.Entry{Path: d, Type: rootfs.TypeDir, Mode: 0o755})
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range dirs {
		addDir(p)
	}
	for p, body := range files {
		addDir(path.Dir(p))
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		ix.Add(&rootfs.Entry{Path: p, Type: rootfs.TypeFile, Size: int64(len(body)), Mode: 0o644})
	}
	for p, to := range links {
		addDir(path.Dir(p))
		if err := os.Symlink(to, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
		ix.Add(&rootfs.Entry{Path: p, Type: rootfs.TypeSymlink, Linkname: to, Mode: 0o777})
	}
	return &rootfs.Tree{Dir: dir, Config: &v1.ConfigFile{}, Index: ix, Rootless: true}
}

// keepWithParents is a closure's Keep of the index paths ps: each with the directories above it.
func keepWithParents(ps ...string) map[string][]string {
	keep := map[string][]string{}
	for _, p := range ps {
		keep[p] = []string{"test"}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if keep[d] == nil {
				keep[d] = []string{rootfs.ReasonParent}
			}
		}
	}
	return keep
}

// lines is a file of one line each, each ending in a newline.
func lines(ls ...string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

// md5sums is an md5sums file of the given paths (relative, as dpkg writes them) and contents.
func md5sums(files map[string]string, order ...string) string {
	var out []string
	for _, f := range order {
		out = append(out, fmt.Sprintf("%x  %s", md5.Sum([]byte(files["/"+f])), f))
	}
	return lines(out...)
}

const (
	stanzaBase = "Package: base-files\nEssential: yes\nStatus: install ok installed\nPriority: required\nSection: admin\n" +
		"Installed-Size: 340\nMaintainer: Santiago Vila <sanvila@debian.org>\nArchitecture: amd64\nMulti-Arch: foreign\n" +
		"Version: 12.4+deb12u5\nReplaces: base, dpkg (<= 1.15.0), miscutils\nProvides: base\nPre-Depends: awk\n" +
		"Conffiles:\n /etc/debian_version 7e2fdb2ee6b8ba4a8bc1b2a5e5ab0b1a\n /etc/issue 9d3b5d8ce8e3c4b8d3f1e6e2e8d4c5f7\n" +
		"Description: Debian base system miscellaneous files\n This package contains the basic filesystem hierarchy of a Debian system, and\n" +
		" several important miscellaneous files.\n"
	stanzaLibc = "Package: libc6\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 12985\n" +
		"Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: same\n" +
		"Source: glibc\nVersion: 2.36-9+deb12u4\nDepends: libgcc-s1\nConffiles:\n /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab\n" +
		"Description: GNU C Library: Shared libraries\n Contains the standard libraries that are used by nearly all programs on\n .\n the system.\n"
	stanzaLibcI386 = "Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nSource: glibc\n" +
		"Version: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nDescription: GNU C Library: Shared libraries\n"
	stanzaTzdata = "Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n" +
		"Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nDescription: time zone and daylight-saving time data\n"
	stanzaDash = "Package: dash\nEssential: yes\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.5.12-2\n" +
		"Maintainer: Andrej Shadura <andrewsh@debian.org>\nDescription: POSIX-compliant shell\n"
	stanzaPython = "Package: python3\nStatus: install ok installed\nArchitecture: amd64\nSource: python3-defaults\n" +
		"Version: 3.11.2-1+b1\nMaintainer: Matthias Klose <doko@debian.org>\nDescription: interactive high-level object-oriented language (default python3 version)\n"
	stanzaPython311 = "Package: python3.11\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.11.2-6+deb12u2\n" +
		"Maintainer: Matthias Klose <doko@debian.org>\nDescription: Interactive high-level object-oriented language (version 3.11)\n"
	stanzaRemoved = "Package: oldpkg\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1.0\n" +
		"Maintainer: Nobody <nobody@example.org>\nConffiles:\n /etc/oldpkg.conf 0123456789abcdef0123456789abcdef\nDescription: removed, its conffile left\n"
)

// dpkgImage is a merged-usr Debian-like tree (/lib and /bin are symlinks into /usr, dpkg's lists spell the
// old paths) with a dpkg database, its Set as pkgdb.Read gives it (files as the index has them), and a
// closure that keeps: base-files' /etc/debian_version, libc6's libc.so.6 (by its /usr path), dash's /bin/sh
// symlink alone, python3's /usr/bin/python3 symlink and libc6:i386 nothing; tzdata only its zoneinfo
// directory; python3.11 nothing.
func dpkgImage(t *testing.T) (*rootfs.Tree, *Set, map[string][]string) {
	t.Helper()
	const admin = "/var/lib/dpkg"
	files := map[string]string{
		"/etc/debian_version":                              "12.5\n",
		"/etc/issue":                                       "Debian GNU/Linux 12 \\n \\l\n",
		"/usr/share/doc/base-files/copyright":              "base-files copyright\n",
		"/usr/lib/x86_64-linux-gnu/libc.so.6":              "\x7fELF libc",
		"/usr/lib/x86_64-linux-gnu/libm.so.6":              "\x7fELF libm",
		"/etc/ld.so.conf.d/x86_64-linux-gnu.conf":          "/usr/local/lib/x86_64-linux-gnu\n",
		"/usr/share/doc/libc6/copyright":                   "libc6 copyright\n",
		"/usr/lib/i386-linux-gnu/libc.so.6":                "\x7fELF libc i386",
		"/usr/share/zoneinfo/UTC":                          "TZif",
		"/usr/bin/dash":                                    "\x7fELF dash",
		"/usr/share/man/man1/dash.1.gz":                    "man",
		"/usr/bin/python3.11":                              "\x7fELF python",
		"/usr/lib/python3.11/os.py":                        "import abc\n",
		"/usr/share/doc/python3/copyright":                 "python3 copyright\n",
		"/usr/share/doc/with space/file name":              "a path with spaces\n",
		admin + "/available":                               stanzaTzdata,
		admin + "/status-old":                              stanzaTzdata,
		admin + "/diversions":                              "/bin/sh\n/bin/sh.distrib\ndash\n",
		admin + "/statoverride":                            "",
		admin + "/arch":                                    "amd64\ni386\n",
		admin + "/cmethopt":                                "apt apt\n",
		admin + "/lock":                                    "",
		admin + "/info/format":                             "1\n",
		admin + "/info/base-files.list":                    lines("/.", "/etc", "/etc/debian_version", "/etc/issue", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/base-files", "/usr/share/doc/base-files/copyright", "/usr/share/doc/with space", "/usr/share/doc/with space/file name"),
		admin + "/info/base-files.conffiles":               lines("/etc/debian_version", "/etc/issue"),
		admin + "/info/base-files.postinst":                "#!/bin/sh\nexit 0\n",
		admin + "/info/libc6:amd64.list":                   lines("/.", "/etc", "/etc/ld.so.conf.d", "/etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/lib", "/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/libc6", "/usr/share/doc/libc6/copyright"),
		admin + "/info/libc6:amd64.conffiles":              lines("/etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
		admin + "/info/libc6:amd64.shlibs":                 "libc 6 libc6 (>= 2.36)\n",
		admin + "/info/libc6:amd64.triggers":               "activate-noawait ldconfig\n",
		admin + "/info/libc6:i386.list":                    lines("/.", "/lib", "/lib/i386-linux-gnu", "/lib/i386-linux-gnu/libc.so.6"),
		admin + "/info/libc6:i386.md5sums":                 "0123456789abcdef0123456789abcdef  lib/i386-linux-gnu/libc.so.6\n",
		admin + "/info/tzdata.list":                        lines("/.", "/usr", "/usr/share", "/usr/share/zoneinfo", "/usr/share/zoneinfo/UTC"),
		admin + "/info/tzdata.md5sums":                     "0123456789abcdef0123456789abcdef  usr/share/zoneinfo/UTC\n",
		admin + "/info/tzdata.postinst":                    "#!/bin/sh\n",
		admin + "/info/dash.list":                          lines("/.", "/bin", "/bin/dash", "/bin/sh", "/usr", "/usr/share", "/usr/share/man", "/usr/share/man/man1", "/usr/share/man/man1/dash.1.gz"),
		admin + "/info/dash.postinst":                      "#!/bin/sh\n",
		admin + "/info/python3.list":                       lines("/.", "/usr", "/usr/bin", "/usr/bin/python3", "/usr/share", "/usr/share/doc", "/usr/share/doc/python3", "/usr/share/doc/python3/copyright"),
		admin + "/info/python3.11.list":                    lines("/.", "/usr", "/usr/bin", "/usr/bin/python3.11", "/usr/lib", "/usr/lib/python3.11", "/usr/lib/python3.11/os.py"),
		admin + "/info/python3.11.md5sums":                 "0123456789abcdef0123456789abcdef  usr/bin/python3.11\n",
		admin + "/info/oldpkg.list":                        lines("/.", "/etc", "/etc/oldpkg.conf"),
		admin + "/info/oldpkg.conffiles":                   lines("/etc/oldpkg.conf"),
		admin + "/status":                                  stanzaBase + "\n" + stanzaLibc + "\n" + stanzaLibcI386 + "\n" + stanzaTzdata + "\n" + stanzaDash + "\n" + stanzaRemoved + "\n" + stanzaPython + "\n" + stanzaPython311 + "\n",
		"/etc/oldpkg.conf":                                 "old\n",
		"/usr/share/doc/base-files/README.not-in-the-list": "x",
	}
	files[admin+"/info/base-files.md5sums"] = md5sums(files, "etc/debian_version", "etc/issue", "usr/share/doc/base-files/copyright", "usr/share/doc/with space/file name")
	files[admin+"/info/libc6:amd64.md5sums"] = md5sums(files, "lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libm.so.6", "usr/share/doc/libc6/copyright")
	files[admin+"/info/dash.md5sums"] = md5sums(files, "bin/dash", "usr/share/man/man1/dash.1.gz")
	files[admin+"/info/python3.md5sums"] = md5sums(files, "usr/share/doc/python3/copyright")
	tree := synthTree(t, []string{admin + "/updates", admin + "/triggers", "/usr/bin", "/usr/lib"}, files, map[string]string{
		"/lib": "usr/lib", "/bin": "usr/bin", "/lib64": "usr/lib64", "/usr/bin/sh": "dash", "/usr/bin/python3": "python3.11",
	})
	deb := func(name, arch, version string, files ...string) *Package {
		sort.Strings(files)
		return &Package{Type: Deb, Namespace: "debian", Name: name, Arch: arch, Version: version, DB: admin + "/status",
			PURL: fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s", name, version, arch), Files: files}
	}
	set := &Set{Packages: []*Package{
		deb("base-files", "amd64", "12.4+deb12u5", "/", "/etc", "/etc/debian_version", "/etc/issue", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/base-files", "/usr/share/doc/base-files/copyright", "/usr/share/doc/with space", "/usr/share/doc/with space/file name"),
		deb("libc6", "amd64", "2.36-9+deb12u4", "/", "/etc", "/etc/ld.so.conf.d", "/etc/ld.so.conf.d/x86_64-linux-gnu.conf", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/libc6", "/usr/share/doc/libc6/copyright"),
		deb("libc6", "i386", "2.36-9+deb12u4", "/", "/usr/lib", "/usr/lib/i386-linux-gnu", "/usr/lib/i386-linux-gnu/libc.so.6"),
		deb("tzdata", "all", "2024a-0+deb12u1", "/", "/usr", "/usr/share", "/usr/share/zoneinfo", "/usr/share/zoneinfo/UTC"),
		deb("dash", "amd64", "0.5.12-2", "/", "/usr/bin", "/usr/bin/dash", "/usr/bin/sh", "/usr", "/usr/share", "/usr/share/man", "/usr/share/man/man1", "/usr/share/man/man1/dash.1.gz"),
		deb("python3", "amd64", "3.11.2-1+b1", "/", "/usr", "/usr/bin", "/usr/bin/python3", "/usr/share", "/usr/share/doc", "/usr/share/doc/python3", "/usr/share/doc/python3/copyright"),
		deb("python3.11", "amd64", "3.11.2-6+deb12u2", "/", "/usr", "/usr/bin", "/usr/bin/python3.11", "/usr/lib", "/usr/lib/python3.11", "/usr/lib/python3.11/os.py"),
	}}
	keep := keepWithParents("/etc/debian_version", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/sh", "/usr/bin/python3", "/usr/share/zoneinfo", "/usr/share/doc/with space/file name", "/usr/share/doc/python3")
	return tree, set, keep
}

// TestPruneDpkg: the status file keeps the stanzas of the packages with a kept file or symlink, byte for
// byte and in order (a package with only a directory kept, one with nothing, another architecture's of
// the same name, a removed one's and python3.11's beside python3's are dropped); the kept packages' .list,
// .md5sums and conffiles are cut to what the slim image has in dpkg's spelling (/lib/x86_64-linux-gnu/...
// where /lib is a symlink; a conffile's flags kept; a path with spaces), their other info files kept as
// they are, the dropped packages' and the admindir's other files left out; the directories above each
// kept file are kept. Each expected file is spelled out whole: a prune that keeps more, or less, fails.
func TestPruneDpkg(t *testing.T) {
	tree, set, keep := dpkgImage(t)
	pr, err := set.Prune(tree, keep)
	if err != nil {
		t.Fatal(err)
	}
	const admin = "/var/lib/dpkg"
	var kept []string
	for _, p := range pr.Kept {
		kept = append(kept, p.Name+":"+p.Arch)
	}
	if want := []string{"base-files:amd64", "libc6:amd64", "dash:amd64", "python3:amd64"}; !slices.Equal(kept, want) {
		t.Errorf("kept packages %v, want %v", kept, want)
	}
	wantKeep := map[string]string{
		"/var": rootfs.ReasonParent, "/var/lib": rootfs.ReasonParent, admin: rootfs.ReasonParent, admin + "/info": rootfs.ReasonParent,
	}
	for _, f := range []string{"status", "arch", "diversions", "statoverride", "info/format",
		// Only the file lists of the kept packages' info files: not their postinst, shlibs or triggers.
		"info/base-files.list", "info/base-files.md5sums", "info/base-files.conffiles",
		"info/libc6:amd64.list", "info/libc6:amd64.md5sums", "info/libc6:amd64.conffiles",
		"info/dash.list", "info/dash.md5sums", "info/python3.list", "info/python3.md5sums"} {
		wantKeep[path.Join(admin, f)] = ReasonPackageDB
	}
	if !maps.Equal(pr.Keep, wantKeep) {
		t.Errorf("Keep:\n%s\nwant:\n%s", fmtMap(pr.Keep), fmtMap(wantKeep))
	}
	files := func(p string) string {
		b, err := os.ReadFile(filepath.Join(tree.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	wantReplace := map[string]string{
		admin + "/status":                     stanzaBase + "\n" + stanzaLibc + "\n" + stanzaDash + "\n" + stanzaPython + "\n",
		admin + "/info/base-files.list":       lines("/.", "/etc", "/etc/debian_version", "/usr", "/usr/share", "/usr/share/doc", "/usr/share/doc/with space", "/usr/share/doc/with space/file name"),
		admin + "/info/base-files.md5sums":    strings.Join(slices.Delete(strings.SplitAfter(files(admin+"/info/base-files.md5sums"), "\n"), 1, 3), ""),
		admin + "/info/base-files.conffiles":  lines("/etc/debian_version"),
		admin + "/info/libc6:amd64.list":      lines("/.", "/lib", "/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu/libc.so.6"),
		admin + "/info/libc6:amd64.md5sums":   strings.SplitAfter(files(admin+"/info/libc6:amd64.md5sums"), "\n")[0],
		admin + "/info/libc6:amd64.conffiles": "",
		admin + "/info/dash.list":             lines("/.", "/bin", "/bin/sh"),
		admin + "/info/dash.md5sums":          "",
		admin + "/info/python3.list":          lines("/.", "/usr", "/usr/bin", "/usr/bin/python3", "/usr/share", "/usr/share/doc", "/usr/share/doc/python3"),
		admin + "/info/python3.md5sums":       "",
	}
	got := map[string]string{}
	for p, b := range pr.Replace {
		got[p] = string(b)
	}
	if !maps.Equal(got, wantReplace) {
		for p := range wantReplace {
			if got[p] != wantReplace[p] {
				t.Errorf("%s:\n%q\nwant\n%q", p, got[p], wantReplace[p])
			}
		}
		for p := range got {
			if _, ok := wantReplace[p]; !ok {
				t.Errorf("%s replaced, with %q", p, got[p])
			}
		}
	}
	// Replace names only kept regular files (emit refuses anything else).
	for p := range pr.Replace {
		if _, ok := pr.Keep[p]; !ok && keep[p] == nil || !tree.IsFile(p) {
			t.Errorf("%s replaced, not a kept file", p)
		}
	}

	// Twice the same: the output is a function of its input.
	again, err := set.Prune(tree, keep)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(again.Keep, pr.Keep) || !maps.EqualFunc(again.Replace, pr.Replace, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Error("a second Prune of the same input differs")
	}
}

// TestPruneDpkgQuery: the pruned database, written out as the slim image would have it, is read by the real
// dpkg-query and dpkg -S: they list exactly the kept packages with their versions and architectures, find
// the owner of a kept library by the path dpkg knows it by, and none for a dropped file.
func TestPruneDpkgQuery(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("needs dpkg-query (a Debian machine's dpkg): ", err)
	}
	tree, set, keep := dpkgImage(t)
	pr, err := set.Prune(tree, keep)
	if err != nil {
		t.Fatal(err)
	}
	root := writeSlim(t, tree, keep, pr)
	admin := filepath.Join(root, "var/lib/dpkg")
	query := func(args ...string) (string, error) {
		out, err := exec.Command("dpkg-query", append([]string{"--admindir=" + admin}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := query("-W", "-f", "${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\n")
	want := "base-files:amd64 12.4+deb12u5 ii \ndash:amd64 0.5.12-2 ii \nlibc6:amd64 2.36-9+deb12u4 ii \npython3:amd64 3.11.2-1+b1 ii \n"
	if err != nil || out != want {
		t.Errorf("dpkg-query -W: %v\n%s\nwant\n%s", err, out, want)
	}
	for p, owner := range map[string]string{
		"/lib/x86_64-linux-gnu/libc.so.6": "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6\n",
		"/etc/debian_version":             "base-files: /etc/debian_version\n",
		"/bin/sh":                         "diversion by dash from: /bin/sh\ndiversion by dash to: /bin/sh.distrib\ndash: /bin/sh\n",
	} {
		if out, err := query("-S", p); err != nil || out != owner {
			t.Errorf("dpkg-query -S %s: %v: %q, want %q", p, err, out, owner)
		}
	}
	for _, p := range []string{"/lib/x86_64-linux-gnu/libm.so.6", "/usr/share/zoneinfo/UTC", "/usr/bin/python3.11", "/etc/issue"} {
		if out, err := query("-S", p); err == nil {
			t.Errorf("dpkg-query -S %s (dropped) found %q", p, out)
		}
	}
	if out, err := query("-L", "libc6:amd64"); err != nil || out != "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n" {
		t.Errorf("dpkg-query -L libc6: %v: %q", err, out)
	}
	if out, err := exec.Command("dpkg", "--admindir="+admin, "-S", "/lib/x86_64-linux-gnu/libc.so.6").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "libc6:amd64: ") {
		t.Errorf("dpkg -S: %v: %s", err, out)
	}
}

// writeSlim writes what a slim image of tree with keep and pr holds into a new directory: each kept file
// with pr's content where it replaces the tree's, directories, symlinks.
func writeSlim(t *testing.T, tree *rootfs.Tree, keep map[string][]string, pr *Pruned) string {
	t.Helper()
	root := t.TempDir()
	err := tree.Index.Walk(func(e *rootfs.Entry) error {
		if _, ok := pr.Keep[e.Path]; !ok && keep[e.Path] == nil {
			return nil
		}
		dst := filepath.Join(root, e.Path)
		switch e.Type {
		case rootfs.TypeDir:
			return os.MkdirAll(dst, 0o755)
		case rootfs.TypeSymlink:
			return os.Symlink(e.Linkname, dst)
		case rootfs.TypeFile:
			b, ok := pr.Replace[e.Path]
			if !ok {
				var err error
				if b, err = tree.ReadFile(e.Path); err != nil {
					return err
				}
			}
			return os.WriteFile(dst, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func fmtMap(m map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, "  "+k+" "+m[k])
	}
	return strings.Join(out, "\n")
}

const (
	apkMusl = "C:Q1aaaa=\nP:musl\nV:1.2.4-r2\nA:x86_64\nS:383152\nI:622592\nT:the musl c library (libc) implementation\n" +
		"U:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\np:so:libc.musl-x86_64.so.1=1\n"
	apkMuslFiles = "F:lib\nM:0:0:755\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1bbbb=\nR:libc.musl-x86_64.so.1\na:0:0:777\nZ:Q1cccc=\n" +
		"F:usr\nF:usr/lib\n"
	apkBusybox = "C:Q1dddd=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:busybox\nZ:Q1eeee=\n"
	apkZlib    = "C:Q1ffff=\nP:zlib\nV:1.3.1-r0\nA:x86_64\nL:Zlib\no:zlib\n" +
		"F:usr\nF:usr/lib\nR:libz.so.1\nZ:Q1gggg=\nR:libz.so.1.3.1\nZ:Q1hhhh=\nF:usr/share\nF:usr/share/doc\nR:README\n"
)

// TestPruneApk: apk's installed database keeps the kept packages' stanzas, every field as it was, their F:
// lines (with M:) cut to the directories leading to kept files and their R: lines (with a: and Z:) to the
// kept files; a package with no kept file is gone. The database is found through a symlinked /lib (a
// merged-usr Alpine), which is kept with it.
func TestPruneApk(t *testing.T) {
	tree := synthTree(t, nil, map[string]string{
		"/usr/lib/ld-musl-x86_64.so.1": "\x7fELF musl", "/usr/lib/libz.so.1.3.1": "\x7fELF zlib", "/usr/bin/busybox": "\x7fELF busybox",
		"/usr/share/doc/README":     "zlib readme",
		"/usr/lib/apk/db/installed": apkMusl + apkMuslFiles + "\n" + apkBusybox + "\n" + apkZlib + "\n",
	}, map[string]string{"/lib": "usr/lib", "/bin": "usr/bin", "/usr/lib/libc.musl-x86_64.so.1": "ld-musl-x86_64.so.1", "/usr/lib/libz.so.1": "libz.so.1.3.1"})
	apk := func(name string, files ...string) *Package {
		return &Package{Type: Apk, Namespace: "alpine", Name: name, DB: "/lib/apk/db/installed", Files: files}
	}
	set := &Set{Packages: []*Package{
		apk("musl", "/usr/lib", "/usr/lib/ld-musl-x86_64.so.1", "/usr/lib/libc.musl-x86_64.so.1", "/usr", "/usr/lib"),
		apk("busybox", "/usr/bin", "/usr/bin/busybox"),
		apk("zlib", "/usr", "/usr/lib", "/usr/lib/libz.so.1", "/usr/lib/libz.so.1.3.1", "/usr/share", "/usr/share/doc", "/usr/share/doc/README"),
	}}
	pr, err := set.Prune(tree, keepWithParents("/usr/lib/ld-musl-x86_64.so.1", "/usr/lib/libz.so.1.3.1"))
	if err != nil {
		t.Fatal(err)
	}
	want := apkMusl + "F:lib\nM:0:0:755\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1bbbb=\n" + "\n" +
		"C:Q1ffff=\nP:zlib\nV:1.3.1-r0\nA:x86_64\nL:Zlib\no:zlib\nF:usr\nF:usr/lib\nR:libz.so.1.3.1\nZ:Q1hhhh=\n" + "\n"
	if got := string(pr.Replace["/usr/lib/apk/db/installed"]); got != want || len(pr.Replace) != 1 {
		t.Errorf("installed:\n%s\nwant:\n%s\n(%d replaced)", got, want, len(pr.Replace))
	}
	wantKeep := map[string]string{"/lib": rootfs.ReasonSymlink, "/usr/lib/apk/db/installed": ReasonPackageDB, "/usr/lib/apk": rootfs.ReasonParent, "/usr/lib/apk/db": rootfs.ReasonParent}
	if !maps.Equal(pr.Keep, wantKeep) {
		t.Errorf("Keep:\n%s\nwant:\n%s", fmtMap(pr.Keep), fmtMap(wantKeep))
	}
	if len(pr.Kept) != 2 || pr.Kept[0].Name != "musl" || pr.Kept[1].Name != "zlib" {
		t.Errorf("kept %v", pr.Kept)
	}
}

// TestPruneMetadata: a kept Python package's dist-info is kept whole, its RECORD cut to the files the slim
// image has (relative to site-packages, ../../../bin/flask too; a quoted name with a comma), an egg-info
// file (Debian's) and a node package.json and a gemspec kept as they are; the metadata of a package with
// no kept file is not kept; a package whose metadata is inside a jar adds nothing.
func TestPruneMetadata(t *testing.T) {
	const site = "/usr/local/lib/python3.11/site-packages"
	const dist = site + "/flask-2.2.2.dist-info"
	record := lines("flask/__init__.py,sha256=abc,10", "flask/cli.py,sha256=def,20", `"flask/odd,name.py",sha256=ghi,30`,
		"flask-2.2.2.dist-info/METADATA,sha256=jkl,40", "flask-2.2.2.dist-info/RECORD,,", "../../../bin/flask,sha256=mno,50", "flask/__pycache__/cli.cpython-311.pyc,,")
	tree := synthTree(t, nil, map[string]string{
		site + "/flask/__init__.py": "x", site + "/flask/cli.py": "x", site + "/flask/odd,name.py": "x", "/usr/local/bin/flask": "#!/usr/bin/python3\n",
		dist + "/METADATA": "Metadata-Version: 2.1\nName: Flask\nVersion: 2.2.2\n", dist + "/RECORD": record, dist + "/INSTALLER": "pip\n",
		dist + "/licenses/LICENSE.rst":           "BSD",
		site + "/click-8.1.3.dist-info/METADATA": "Name: click\n", site + "/click/__init__.py": "x",
		"/usr/lib/python3/dist-packages/six-1.16.0.egg-info": "Metadata-Version: 1.2\nName: six\n", "/usr/lib/python3/dist-packages/six.py": "x",
		"/app/node_modules/express/package.json": `{"name":"express","version":"4.18.2"}`, "/app/node_modules/express/index.js": "x",
		"/var/lib/gems/3.1.0/specifications/sinatra-3.0.5.gemspec": "Gem::Specification.new", "/var/lib/gems/3.1.0/gems/sinatra-3.0.5/lib/sinatra.rb": "x",
		"/app/lib/guava.jar": "PK",
	}, nil)
	set := &Set{Packages: []*Package{
		{Type: PyPI, Name: "flask", Version: "2.2.2", DB: dist, Files: []string{site + "/flask/__init__.py", site + "/flask/cli.py", site + "/flask/odd,name.py", "/usr/local/bin/flask"}},
		{Type: PyPI, Name: "click", Version: "8.1.3", DB: site + "/click-8.1.3.dist-info", Files: []string{site + "/click/__init__.py"}},
		{Type: PyPI, Name: "six", Version: "1.16.0", DB: "/usr/lib/python3/dist-packages/six-1.16.0.egg-info", Files: []string{"/usr/lib/python3/dist-packages/six.py"}},
		{Type: Npm, Name: "express", Version: "4.18.2", DB: "/app/node_modules/express/package.json", Files: []string{"/app/node_modules/express/index.js"}},
		{Type: Gem, Name: "sinatra", Version: "3.0.5", DB: "/var/lib/gems/3.1.0/specifications/sinatra-3.0.5.gemspec", Files: []string{"/var/lib/gems/3.1.0/gems/sinatra-3.0.5/lib/sinatra.rb"}},
		{Type: Maven, Namespace: "com.google.guava", Name: "guava", Version: "32.1.2", DB: "/app/lib/guava.jar!/META-INF/maven/com.google.guava/guava/pom.properties", Files: []string{"/app/lib/guava.jar"}},
	}}
	keep := keepWithParents(site+"/flask/__init__.py", site+"/flask/odd,name.py", "/usr/local/bin/flask", "/usr/lib/python3/dist-packages/six.py",
		"/app/node_modules/express/index.js", "/var/lib/gems/3.1.0/gems/sinatra-3.0.5/lib/sinatra.rb", "/app/lib/guava.jar")
	pr, err := set.Prune(tree, keep)
	if err != nil {
		t.Fatal(err)
	}
	wantKeep := map[string]string{
		dist: ReasonPackageDB, dist + "/METADATA": ReasonPackageDB, dist + "/RECORD": ReasonPackageDB, dist + "/INSTALLER": ReasonPackageDB,
		dist + "/licenses": ReasonPackageDB, dist + "/licenses/LICENSE.rst": ReasonPackageDB,
		"/usr/lib/python3/dist-packages/six-1.16.0.egg-info":       ReasonPackageDB,
		"/app/node_modules/express/package.json":                   ReasonPackageDB,
		"/var/lib/gems/3.1.0/specifications/sinatra-3.0.5.gemspec": ReasonPackageDB, "/var/lib/gems/3.1.0/specifications": rootfs.ReasonParent,
	}
	if !maps.Equal(pr.Keep, wantKeep) {
		t.Errorf("Keep:\n%s\nwant:\n%s", fmtMap(pr.Keep), fmtMap(wantKeep))
	}
	want := lines("flask/__init__.py,sha256=abc,10", `"flask/odd,name.py",sha256=ghi,30`, "flask-2.2.2.dist-info/METADATA,sha256=jkl,40", "flask-2.2.2.dist-info/RECORD,,", "../../../bin/flask,sha256=mno,50")
	if got := string(pr.Replace[dist+"/RECORD"]); got != want || len(pr.Replace) != 1 {
		t.Errorf("RECORD:\n%s\nwant:\n%s\n(%d replaced)", got, want, len(pr.Replace))
	}
	if len(pr.Kept) != 5 {
		t.Errorf("%d kept, want all but click", len(pr.Kept))
	}
}

// TestPruneDistroless: a distroless image's status.d has a stanza file and an md5sums file a package: the
// kept packages' are kept (md5sums cut), the dropped ones' not.
func TestPruneDistroless(t *testing.T) {
	const d = "/var/lib/dpkg/status.d"
	tree := synthTree(t, nil, map[string]string{
		d + "/base-files": stanzaBase, d + "/base-files.md5sums": "0123  etc/debian_version\n4567  etc/issue\n",
		d + "/tzdata": stanzaTzdata, d + "/tzdata.md5sums": "89ab  usr/share/zoneinfo/UTC\n",
		"/etc/debian_version": "12", "/etc/issue": "x", "/usr/share/zoneinfo/UTC": "TZif",
	}, nil)
	set := &Set{Packages: []*Package{
		{Type: Deb, Name: "base-files", Arch: "amd64", DB: d + "/base-files", Files: []string{"/etc", "/etc/debian_version", "/etc/issue"}},
		{Type: Deb, Name: "tzdata", Arch: "all", DB: d + "/tzdata", Files: []string{"/usr/share/zoneinfo/UTC"}},
	}}
	pr, err := set.Prune(tree, keepWithParents("/etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	wantKeep := map[string]string{d + "/base-files": ReasonPackageDB, d + "/base-files.md5sums": ReasonPackageDB,
		"/var": rootfs.ReasonParent, "/var/lib": rootfs.ReasonParent, "/var/lib/dpkg": rootfs.ReasonParent, d: rootfs.ReasonParent}
	if !maps.Equal(pr.Keep, wantKeep) {
		t.Errorf("Keep:\n%s\nwant:\n%s", fmtMap(pr.Keep), fmtMap(wantKeep))
	}
	if got := string(pr.Replace[d+"/base-files.md5sums"]); got != "0123  etc/debian_version\n" || len(pr.Replace) != 1 {
		t.Errorf("md5sums %q (%d replaced)", got, len(pr.Replace))
	}
}

// TestPruneBadDatabase: a database the Set names that is not a regular file of the image is an error
// naming it, not a panic nor an empty database.
func TestPruneBadDatabase(t *testing.T) {
	tree := synthTree(t, []string{"/var/lib/dpkg/status", "/lib/apk/db"}, map[string]string{"/usr/bin/x": "x"}, map[string]string{"/lib/apk/db/installed": "/nowhere"})
	for _, c := range []struct{ typ, db, want string }{
		{Deb, "/var/lib/dpkg/status", "pruning /var/lib/dpkg/status: not a regular file in the image"},
		{Apk, "/lib/apk/db/installed", "pruning /lib/apk/db/installed: not a regular file in the image"},
		{Deb, "/var/lib/dpkg/missing", "pruning /var/lib/dpkg/missing: not a regular file in the image"},
	} {
		set := &Set{Packages: []*Package{{Type: c.typ, Name: "x", DB: c.db, Files: []string{"/usr/bin/x"}}}}
		if _, err := set.Prune(tree, keepWithParents("/usr/bin/x")); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.db, err, c.want)
		}
	}
}

// TestPruneMetadataOwnedBySystemPackage: the language metadata Prune keeps counts as a file of the system
// package that owns it: a deb that owns only an egg-info (its module file another deb's) is in the pruned
// status, the egg-info in its list.
func TestPruneMetadataOwnedBySystemPackage(t *testing.T) {
	const egg = "/usr/lib/python3/dist-packages/six-1.16.0.egg-info"
	stanza := "Package: python3-six-meta\nStatus: install ok installed\nArchitecture: all\nVersion: 1.16.0-4\n"
	other := "Package: python3-six-code\nStatus: install ok installed\nArchitecture: all\nVersion: 1.16.0-4\n"
	tree := synthTree(t, nil, map[string]string{
		egg: "Metadata-Version: 1.2\nName: six\n", "/usr/lib/python3/dist-packages/six.py": "x", "/usr/share/doc/six/README": "x",
		"/var/lib/dpkg/status":                     stanza + "\n" + other,
		"/var/lib/dpkg/info/python3-six-meta.list": lines("/.", "/usr", "/usr/lib", "/usr/lib/python3", "/usr/lib/python3/dist-packages", egg, "/usr/share", "/usr/share/doc", "/usr/share/doc/six", "/usr/share/doc/six/README"),
		"/var/lib/dpkg/info/python3-six-code.list": lines("/.", "/usr", "/usr/lib", "/usr/lib/python3", "/usr/lib/python3/dist-packages", "/usr/lib/python3/dist-packages/six.py"),
	}, nil)
	set := &Set{Packages: []*Package{
		{Type: Deb, Name: "python3-six-meta", Arch: "all", DB: "/var/lib/dpkg/status", Files: []string{egg, "/usr/share/doc/six/README"}},
		{Type: Deb, Name: "python3-six-code", Arch: "all", DB: "/var/lib/dpkg/status", Files: []string{"/usr/lib/python3/dist-packages/six.py"}},
		{Type: PyPI, Name: "six", Version: "1.16.0", DB: egg, Files: []string{"/usr/lib/python3/dist-packages/six.py"}},
	}}
	pr, err := set.Prune(tree, keepWithParents("/usr/lib/python3/dist-packages/six.py"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Kept) != 3 {
		t.Errorf("kept %d packages, want 3", len(pr.Kept))
	}
	if _, ok := pr.Replace["/var/lib/dpkg/status"]; ok {
		t.Errorf("status cut to %q, want it whole", pr.Replace["/var/lib/dpkg/status"])
	}
	want := lines("/.", "/usr", "/usr/lib", "/usr/lib/python3", "/usr/lib/python3/dist-packages", egg)
	if got := string(pr.Replace["/var/lib/dpkg/info/python3-six-meta.list"]); got != want {
		t.Errorf("python3-six-meta.list:\n%s\nwant\n%s", got, want)
	}
}
