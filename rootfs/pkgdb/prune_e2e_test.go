package pkgdb_test

// End-to-end: the pruned database in a real slim image, read by the real dpkg. It skips, saying why, only
// when the test bed is not built (unpackSample); `make test` builds it.

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/emit"
	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/rootfs"
	"github.com/slimoci/slimoci/rootfs/pkgdb"
)

// dpkgPackage is one package as dpkg-query reads it: "Version Source:Package Source:Version Status", and
// its file list as dpkg has it.
type dpkgPackage struct {
	fields string
	files  []string
}

// dpkgDB reads the dpkg database under root with dpkg-query: each package (name:arch) with its fields and
// file list.
func dpkgDB(t *testing.T, root string) map[string]dpkgPackage {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f", "${Package}:${Architecture} ${Version} ${source:Package} ${source:Version} ${db:Status-Abbrev}\n${db-fsys:Files}").Output()
	if err != nil {
		t.Fatalf("dpkg-query in %s: %v", root, err)
	}
	pkgs := map[string]dpkgPackage{}
	var cur string
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if f, ok := strings.CutPrefix(l, " "); ok {
			p := pkgs[cur]
			p.files = append(p.files, f)
			pkgs[cur] = p
			continue
		}
		cur, _, _ = strings.Cut(l, " ")
		pkgs[cur] = dpkgPackage{fields: strings.TrimPrefix(l, cur+" ")}
	}
	return pkgs
}

// listedFiles are the paths a dpkg file list names that the image has and are not directories (a listed
// path another one is under is a directory, whatever the image has there: dpkg's /lib), each with its index
// path (the symlinked directories on its way followed, as dpkg would).
func listedFiles(ix *rootfs.Index, listed []string) map[string]string {
	dirs := map[string]bool{"/.": true}
	for _, l := range listed {
		for d := path.Dir(l); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	files := map[string]string{}
	for _, l := range listed {
		if dirs[l] {
			continue
		}
		r, err := ix.Resolve(l, false)
		if e, ok := ix.Lookup(r); err == nil && ok && e.Type != rootfs.TypeDir {
			files[l] = r
		}
	}
	return files
}

// TestPruneSamplesDpkg: on each sample, the slim image that a real closure of its app's program makes, with
// the pruned database in, holds a dpkg database that dpkg-query reads: it lists exactly the packages that
// have a kept file by the fat image's lists (as dpkg-query reads them, not pkgdb.Read), each with the fat
// image's version, source and status; each one's file list names exactly its kept files, and nothing the
// slim image lacks; dpkg -S finds libc6 as the owner of libc.so.6, by the path dpkg knows it by. The Python
// sample also keeps Flask's package, whose metadata comes with it. Built twice, the slim image has the same
// digest.
func TestPruneSamplesDpkg(t *testing.T) {
	for _, sample := range testbed.Samples {
		t.Run(sample, func(t *testing.T) { pruneSample(t, sample) })
	}
}

func pruneSample(t *testing.T, sample string) {
	ctx := context.Background()
	fat := unpackSample(t, sample)
	// The app's program, as a run would have seen it executed, and what the closure adds to it.
	cfg := fat.Config.Config
	prog, ok := fat.LookPath(append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)[0])
	if !ok {
		t.Fatalf("the entrypoint %q is not on the image's PATH", cfg.Entrypoint)
	}
	o := rootfs.ClosureOptions{Observed: map[string][]string{prog: {"exec"}}, Workdir: cfg.WorkingDir, Env: cfg.Env, Certs: true}
	if sample == "python" {
		o.Include = []string{"/usr/lib/python3/dist-packages/flask/*.py"}
	}
	closure, err := fat.ComputeClosure(o)
	if err != nil {
		t.Fatal(err)
	}
	set, err := pkgdb.Read(fat)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := set.Prune(fat, closure.Keep)
	if err != nil {
		t.Fatal(err)
	}
	keep := maps.Clone(closure.Keep)
	for p, why := range pr.Keep {
		keep[p] = append(keep[p], why)
	}
	work := t.TempDir()
	build := func() (string, *rootfs.Tree) {
		img, _, err := emit.SlimImage(fat, keep, emit.ImageOptions{Replace: pr.Replace, Source: sample, Dir: work})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		dir, err := os.MkdirTemp(work, "slim-")
		if err != nil {
			t.Fatal(err)
		}
		slim, err := rootfs.Unpack(ctx, img, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d.String(), slim
	}
	d1, slim := build()
	if d2, _ := build(); d1 != d2 {
		t.Errorf("two builds of the same closure differ: %s, %s", d1, d2)
	}

	fatPkgs, slimPkgs := dpkgDB(t, fat.Dir), dpkgDB(t, slim.Dir)
	var want []string
	for name, fp := range fatPkgs {
		var keptFiles []string
		for listed, q := range listedFiles(fat.Index, fp.files) {
			if keep[q] != nil {
				keptFiles = append(keptFiles, listed)
			}
		}
		if len(keptFiles) == 0 {
			continue
		}
		want = append(want, name)
		sp, ok := slimPkgs[name]
		if !ok {
			continue
		}
		if sp.fields != fp.fields {
			t.Errorf("%s: the slim database says %q, the fat one %q", name, sp.fields, fp.fields)
		}
		slimFiles := slices.Sorted(maps.Keys(listedFiles(slim.Index, sp.files)))
		if slices.Sort(keptFiles); !slices.Equal(slimFiles, keptFiles) {
			t.Errorf("%s: the slim database lists the files\n%q\nwant the kept ones\n%q", name, slimFiles, keptFiles)
		}
		for _, l := range sp.files {
			r, err := slim.Index.Resolve(l, true)
			if _, ok := slim.Index.Lookup(r); err != nil || !ok {
				t.Errorf("%s: the slim database lists %s, which the slim image lacks", name, l)
			}
		}
	}
	got := slices.Sorted(maps.Keys(slimPkgs))
	if slices.Sort(want); !slices.Equal(got, want) {
		t.Errorf("the slim database lists\n%q\nwant the packages with a kept file\n%q", got, want)
	}
	var libc string
	for _, l := range fatPkgs["libc6:amd64"].files {
		if path.Base(l) == "libc.so.6" {
			libc = l
		}
	}
	out, err := exec.Command("dpkg", "--admindir="+filepath.Join(slim.Dir, "var/lib/dpkg"), "-S", libc).CombinedOutput()
	if err != nil || string(out) != "libc6:amd64: "+libc+"\n" {
		t.Errorf("dpkg -S %s in the slim image: %v: %q", libc, err, out)
	}
	if sample == "python" {
		var flask *pkgdb.Package
		for _, p := range set.Packages {
			if p.Type == pkgdb.PyPI && strings.EqualFold(p.Name, "flask") {
				flask = p
			}
		}
		if flask == nil || !slices.Contains(pr.Kept, flask) || !slices.Contains(slices.Collect(maps.Keys(slimPkgs)), "python3-flask:all") {
			t.Errorf("Flask (%+v) is not kept, or python3-flask not listed", flask)
		} else if _, ok := slim.Index.Lookup(flask.DB); !ok {
			t.Errorf("Flask's metadata %s is not in the slim image", flask.DB)
		}
	}
	st, _ := fat.Index.Lookup("/var/lib/dpkg/status")
	t.Logf("%s: %d of %d Debian packages kept (%d packages in all), status %d -> %d bytes, %d database paths added, %d files cut",
		sample, len(got), len(fatPkgs), len(pr.Kept), st.Size, len(pr.Replace["/var/lib/dpkg/status"]), len(pr.Keep), len(pr.Replace))
}
