package pkgdb_test

// End-to-end: Read on the test bed's four samples, unpacked by rootfs.Unpack, against dpkg-query reading the
// same database. They skip, saying why, only when the test bed is not built; `make test` builds it.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/oci"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

func unpackSample(t *testing.T, sample string) *rootfs.Tree {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: end-to-end tests need the test bed")
	}
	bed, reason := testbed.Find()
	if bed == nil {
		t.Skip(reason)
	}
	ctx := context.Background()
	src, err := oci.Open(ctx, oci.Reference{Transport: oci.Layout, Path: bed.Layout(sample), Tag: "latest"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tree, err := rootfs.Unpack(ctx, src.Image, filepath.Join(t.TempDir(), "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// dpkgQuery lists the installed packages dpkg-query reads in tree's database: "name:arch version".
func dpkgQuery(t *testing.T, tree *rootfs.Tree) []string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(tree.Dir, "var/lib/dpkg"), "-W",
		"-f=${db:Status-Abbrev}\t${Package}:${Architecture} ${Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		status, pkg, _ := strings.Cut(line, "\t")
		if s := strings.TrimSpace(status); s == "ii" || s == "hi" {
			pkgs = append(pkgs, pkg)
		}
	}
	slices.Sort(pkgs)
	return pkgs
}

// find is the package whose package URL starts with prefix ("pkg:npm/express@").
func find(s *pkgdb.Set, prefix string) *pkgdb.Package {
	for _, p := range s.Packages {
		if strings.HasPrefix(p.PURL, prefix) {
			return p
		}
	}
	return nil
}

// TestE2ERead reads each sample's databases: the Debian packages are exactly dpkg-query's, with their
// versions; libc6 owns libc.so.6 where the merged-usr image has it; each sample's language packages are
// found (flask as pypi, express as npm, sinatra as a gem; the Java sample's jars carry no pom.properties);
// every owned path is an index path not through a symlink; Usage adds up.
func TestE2ERead(t *testing.T) {
	for _, tc := range []struct {
		sample string
		// lang is a language package each sample has: type, name, version, and a file it owns.
		lang          [4]string
		langCount     map[string]int // at least so many packages of each type
		noLangPackage []string       // types with no package
	}{
		{sample: "python", lang: [4]string{pkgdb.PyPI, "Flask", "2.2.2", "/usr/lib/python3/dist-packages/flask/app.py"},
			langCount: map[string]int{pkgdb.PyPI: 7}, noLangPackage: []string{pkgdb.Npm, pkgdb.Gem, pkgdb.Maven}},
		{sample: "node", lang: [4]string{pkgdb.Npm, "express", "", "/usr/share/nodejs/express/lib/express.js"},
			langCount: map[string]int{pkgdb.Npm: 300}, noLangPackage: []string{pkgdb.Gem, pkgdb.Maven}},
		{sample: "ruby", lang: [4]string{pkgdb.Gem, "sinatra", "3.0.5", "/usr/share/rubygems-integration/all/specifications/sinatra-3.0.5.gemspec"},
			langCount: map[string]int{pkgdb.Gem: 30}, noLangPackage: []string{pkgdb.Npm, pkgdb.Maven}},
		{sample: "java", noLangPackage: []string{pkgdb.PyPI, pkgdb.Npm, pkgdb.Gem, pkgdb.Maven}},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			tree := unpackSample(t, tc.sample)
			start := time.Now()
			s, err := pkgdb.Read(tree)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if len(s.Unreadable) != 0 {
				t.Errorf("unreadable: %q", s.Unreadable)
			}
			counts := map[string]int{}
			var debs []string
			for _, p := range s.Packages {
				counts[p.Type]++
				if p.Type == pkgdb.Deb {
					debs = append(debs, p.Name+":"+p.Arch+" "+p.Version)
				}
			}
			slices.Sort(debs)
			if want := dpkgQuery(t, tree); !slices.Equal(debs, want) {
				t.Errorf("deb packages differ from dpkg-query's:\n got %d %q\nwant %d %q", len(debs), debs, len(want), want)
			}
			t.Logf("%s: %v packages, %d index entries, read in %v", tc.sample, counts, tree.Index.Len(), took.Round(time.Millisecond))

			libc := find(s, "pkg:deb/debian/libc6@")
			if libc == nil {
				t.Fatal("no libc6")
			}
			const libcSo = "/usr/lib/x86_64-linux-gnu/libc.so.6"
			if !slices.Contains(s.Owners(libcSo), libc) {
				t.Errorf("owners of %s: %v, want libc6", libcSo, s.Owners(libcSo))
			}
			// As syft writes it: the point release from /etc/debian_version (os-release says 12).
			point, err := tree.ReadFile("/etc/debian_version")
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("pkg:deb/debian/libc6@%s?arch=amd64&distro=debian-%s&upstream=glibc", strings.ReplaceAll(libc.Version, "+", "%2B"), strings.TrimSpace(string(point)))
			if !strings.HasPrefix(string(point), "12.") || libc.PURL != want {
				t.Errorf("libc6's PURL %s, want %s", libc.PURL, want)
			}
			if bash := find(s, "pkg:deb/debian/bash@"); bash == nil || !strings.Contains(bash.License, "GPL-3+") {
				t.Errorf("bash (DEP-5 copyright) has no GPL-3+ licence: %+v", bash)
			}
			withFiles := 0
			for _, p := range s.Packages {
				if len(p.Files) > 0 {
					withFiles++
				}
				for _, f := range p.Files {
					e, ok := tree.Index.Lookup(f)
					if !ok || e.Path != f {
						t.Fatalf("%s owns %s, not an index path", p.PURL, f)
					}
					if r, err := tree.Index.Resolve(f, false); err != nil || r != f {
						t.Fatalf("%s owns %s, a path through a symlink (%s, %v)", p.PURL, f, r, err)
					}
				}
			}
			if withFiles < len(s.Packages)*9/10 {
				t.Errorf("only %d of %d packages own files", withFiles, len(s.Packages))
			}

			if tc.lang[0] != "" {
				p := find(s, "pkg:"+tc.lang[0]+"/"+strings.ToLower(tc.lang[1])+"@")
				if p == nil || tc.lang[2] != "" && p.Version != tc.lang[2] {
					t.Fatalf("no %s %s %s: %+v", tc.lang[0], tc.lang[1], tc.lang[2], p)
				}
				if !slices.Contains(s.Owners(tc.lang[3]), p) {
					t.Errorf("owners of %s: %v, want %s", tc.lang[3], s.Owners(tc.lang[3]), p.PURL)
				}
				// Debian packages the language package too: both own its files.
				if owners := s.Owners(tc.lang[3]); len(owners) != 2 || owners[0].Type != pkgdb.Deb {
					t.Errorf("owners of %s: %v, want a deb and %s", tc.lang[3], owners, p.PURL)
				}
			}
			for typ, n := range tc.langCount {
				if counts[typ] < n {
					t.Errorf("%d %s packages, want at least %d", counts[typ], typ, n)
				}
			}
			for _, typ := range tc.noLangPackage {
				if counts[typ] != 0 {
					t.Errorf("%d %s packages, want none", counts[typ], typ)
				}
			}

			// Keeping everything keeps every file; keeping nothing drops them; the bytes are the same.
			all := map[string][]string{}
			tree.Index.Walk(func(e *rootfs.Entry) error {
				all[e.Path] = []string{"test"}
				return nil
			})
			kept, dropped := s.Usage(tree.Index, all), s.Usage(tree.Index, nil)
			var keptBytes, droppedBytes int64
			for i := range kept {
				if kept[i].DroppedFiles != 0 || dropped[i].KeptFiles != 0 {
					t.Fatalf("usage with all kept %+v, none kept %+v", kept[i], dropped[i])
				}
				keptBytes += kept[i].KeptBytes
				droppedBytes += dropped[i].DroppedBytes
			}
			if keptBytes != droppedBytes || keptBytes < 50<<20 {
				t.Errorf("kept %d bytes of everything, dropped %d of nothing", keptBytes, droppedBytes)
			}
			if d := dropped; len(d) > 1 && d[0].DroppedBytes < d[len(d)-1].DroppedBytes {
				t.Errorf("usage not sorted by dropped bytes: %v first, %v last", d[0].DroppedBytes, d[len(d)-1].DroppedBytes)
			}
		})
	}
}
