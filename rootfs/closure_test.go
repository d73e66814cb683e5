package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// run runs a tool of the host for a test, failing it with the tool's output.
func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// tarDir makes a layer of a directory on disk (owners root, symlinks and hardlinks as they are).
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	inodes := map[uint64]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, _ := d.Info()
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			t.Fatal(err)
		}
		h.Name, _ = filepath.Rel(dir, p)
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if ino := inode(fi); fi.Mode().IsRegular() && ino != 0 {
			if first, ok := inodes[ino]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
			} else {
				inodes[ino] = h.Name
			}
		}
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			f, _ := os.Open(p)
			io.Copy(tw, f)
			f.Close()
		}
		return nil
	})
	tw.Close()
	return buf.Bytes()
}

// A synthetic tree of real ELF files built with gcc: RUNPATH $ORIGIN, a library found only through the
// tree's own ld.so.cache (made by ldconfig -r), a missing DT_NEEDED, a symlink chain through
// /etc/alternatives, /lib -> usr/lib, a hardlink, Python sources and metadata, certificates, includes and
// excludes.
func TestClosure(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("ldconfig -r (to make the tree's ld.so.cache) needs root")
	}
	src := t.TempDir()
	build := t.TempDir()
	for name, code := range map[string]string{
		"dep.c":    "int dep(void) { return 1; }",
		"foo.c":    "int dep(void); int foo(void) { return dep(); }",
		"main.c":   "int foo(void); int main(void) { return foo() - 1; }",
		"cached.c": "int cached(void) { return 0; }",
		"main2.c":  "int cached(void); int main(void) { return cached(); }",
		"gone.c":   "int gone(void) { return 0; }",
		"main3.c":  "int gone(void); int main(void) { return gone(); }",
	} {
		os.WriteFile(filepath.Join(build, name), []byte(code), 0o644)
	}
	run(t, build, "gcc", "-shared", "-fPIC", "-o", "libdep.so", "dep.c")
	run(t, build, "gcc", "-shared", "-fPIC", "-o", "libfoo.so", "foo.c", "-L.", "-ldep", "-Wl,-rpath,$ORIGIN", "-Wl,--enable-new-dtags")
	run(t, build, "gcc", "-o", "app", "main.c", "-L.", "-lfoo", "-Wl,-rpath-link,.", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")
	run(t, build, "gcc", "-shared", "-fPIC", "-Wl,-soname,libcached.so.1", "-o", "libcached.so.1", "cached.c")
	run(t, build, "gcc", "-o", "app2", "main2.c", "-L.", "-l:libcached.so.1")
	run(t, build, "gcc", "-shared", "-fPIC", "-Wl,-soname,libgone.so.1", "-o", "libgone.so.1", "gone.c")
	run(t, build, "gcc", "-o", "app3", "main3.c", "-L.", "-l:libgone.so.1")

	mk := func(p string, mode fs.FileMode) { os.MkdirAll(filepath.Join(src, p), mode) }
	cp := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(src, to), b, 0o755)
	}
	ln := func(target, p string) { os.Symlink(target, filepath.Join(src, p)) }
	write := func(p, body string) { os.WriteFile(filepath.Join(src, p), []byte(body), 0o644) }
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "lib64", "usr/bin", "etc/alternatives", "opt/app/bin", "opt/app/lib",
		"opt/cached", "opt/data", "etc/ssl/certs", "usr/share/ca-certificates/mozilla", "usr/lib/python3/dist-packages/yaml/__pycache__",
		"usr/lib/python3/dist-packages/PyYAML-6.0.dist-info", "usr/lib/python3/dist-packages/other-1.0.dist-info", "var/unused",
		"srv", "opt/www", "var/spool/app"} {
		mk(d, 0o755)
	}
	mk("tmp", 0o1777)
	os.Chmod(filepath.Join(src, "tmp"), 0o1777)
	libc, _ := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libc.so.6")
	ldso, _ := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	cp(libc, "usr/lib/x86_64-linux-gnu/libc.so.6")
	for _, lib := range []string{"libgcc_s.so.1", "libnss_files.so.2"} {
		real, _ := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/" + lib)
		cp(real, "usr/lib/x86_64-linux-gnu/"+lib)
	}
	cp(ldso, "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	ln("usr/lib", "lib")
	ln("usr/bin", "bin")
	ln("dash", "usr/bin/sh")
	ln("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")
	cp(filepath.Join(build, "app"), "opt/app/bin/app")
	os.Link(filepath.Join(src, "opt/app/bin/app"), filepath.Join(src, "opt/app/bin/app-hard"))
	cp(filepath.Join(build, "libfoo.so"), "opt/app/lib/libfoo.so")
	cp(filepath.Join(build, "libdep.so"), "opt/app/lib/libdep.so")
	cp(filepath.Join(build, "libcached.so.1"), "opt/cached/libcached.so.1")
	cp(filepath.Join(build, "app2"), "opt/app/bin/app2")
	cp(filepath.Join(build, "app3"), "opt/app/bin/app3")
	cp(filepath.Join(build, "app2"), "usr/bin/dash")
	ln("/opt/app/bin/app", "etc/alternatives/tool")
	ln("/etc/alternatives/tool", "usr/bin/tool")
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
	write("etc/group", "root:x:0:\n")
	write("etc/nsswitch.conf", "passwd: files [NOTFOUND=return] nosuch\nhosts: files dns\n")
	write("etc/ld.so.conf", "/opt/cached\n/usr/lib/x86_64-linux-gnu\n")
	write("usr/share/ca-certificates/mozilla/ca.crt", "CERT")
	ln("/usr/share/ca-certificates/mozilla/ca.crt", "etc/ssl/certs/ca.pem")
	write("usr/lib/python3/dist-packages/yaml/__init__.py", "")
	write("usr/lib/python3/dist-packages/yaml/__pycache__/__init__.cpython-311.pyc", "")
	write("usr/lib/python3/dist-packages/yaml/unused.py", "")
	write("usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/top_level.txt", "_yaml\nyaml\n")
	write("usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA", "Name: PyYAML\n")
	write("usr/lib/python3/dist-packages/other-1.0.dist-info/top_level.txt", "other\n")
	write("opt/data/a.txt", "a")
	write("opt/data/b.bin", "b")
	write("var/unused/big", strings.Repeat("x", 1000))
	write("opt/www/index.html", "<p>")
	ln("../opt/www", "srv/www")
	write("var/spool/app/stale.pid", "1")
	run(t, src, "ldconfig", "-r", src)

	tree, err := Unpack(context.Background(), imageOf(t, tarDir(t, src)), filepath.Join(t.TempDir(), "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tree.ComputeClosure(ClosureOptions{
		Observed: map[string][]string{
			"/usr/bin/tool": {"exec"}, "/opt/app/bin/app2": {"exec"}, "/opt/app/bin/app3": {"exec"},
			"/opt/app/bin/app-hard": {"stat"},
			"/usr/lib/python3/dist-packages/yaml/__pycache__/__init__.cpython-311.pyc": {"open"},
			"/tmp/made-by-the-app": {"missing", "open"}, "/proc/self/maps": {"open"},
			// A document root entered through a symlink; a file the app only removed.
			"/srv/www": {"chdir", "link"}, "/var/spool/app/stale.pid": {"missing", "unlink"},
		},
		Certs: true, IncludeShell: true, Include: []string{"/opt/data/*.txt"}, Exclude: []string{"/opt/app/lib/libdep.so"}, Workdir: "/opt/app",
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, reason := range map[string]string{
		"/usr/bin/tool":                       "observed:exec",
		"/etc/alternatives/tool":              "symlink:/usr/bin/tool",
		"/opt/app/bin/app":                    "link-target:/etc/alternatives/tool",
		"/opt/app/bin/app-hard":               "observed:stat",
		"/opt/app/lib/libfoo.so":              "elf-needed:/opt/app/bin/app",  // RUNPATH $ORIGIN/../lib
		"/opt/cached/libcached.so.1":          "elf-needed:/opt/app/bin/app2", // only in ld.so.cache
		"/lib64/ld-linux-x86-64.so.2":         "elf-interp:/opt/app/bin/app",
		"/lib64":                              "parent",
		"/usr/lib/x86_64-linux-gnu/libc.so.6": "elf-needed:/opt/app/bin/app2",
		"/lib":                                "symlink:/lib64/ld-linux-x86-64.so.2",
		"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2":               "link-target:/lib64/ld-linux-x86-64.so.2",
		"/usr/lib/python3/dist-packages/yaml/__init__.py":              "python-source:/usr/lib/python3/dist-packages/yaml/__pycache__/__init__.cpython-311.pyc",
		"/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA": "python-metadata:yaml",
		"/etc/passwd":                               "identity",
		"/etc/ssl/certs/ca.pem":                     "certificates",
		"/usr/share/ca-certificates/mozilla/ca.crt": "link-target:/etc/ssl/certs/ca.pem",
		"/opt/data/a.txt":                           "included:/opt/data/*.txt",
		"/tmp":                                      "near-missing:/tmp/made-by-the-app",
		"/srv/www":                                  "observed:chdir,link",
		"/opt/www":                                  "link-target:/srv/www",
		"/var/spool/app":                            "near-missing:/var/spool/app/stale.pid",
	} {
		if !slices.Contains(c.Keep[p], reason) {
			t.Errorf("%s kept for %v, want %q", p, c.Keep[p], reason)
		}
	}
	for _, p := range []string{"/opt/data/b.bin", "/var/unused", "/var/unused/big", "/usr/lib/python3/dist-packages/yaml/unused.py",
		"/usr/lib/python3/dist-packages/other-1.0.dist-info", "/opt/app/lib/libdep.so", "/proc", "/opt/app/bin",
		"/opt/www/index.html", "/var/spool/app/stale.pid"} {
		if _, ok := c.Keep[p]; ok != (p == "/opt/app/bin") {
			t.Errorf("%s kept: %v", p, c.Keep[p])
		}
	}
	if !slices.Equal(c.Excluded, []string{"/opt/app/lib/libdep.so"}) {
		t.Errorf("excluded %v", c.Excluded)
	}
	if !slices.Equal(c.MissingLibs, []string{"libgone.so.1 (needed by /opt/app/bin/app3)"}) {
		t.Errorf("missing libraries %v", c.MissingLibs)
	}
}

func TestParseLDCacheRejects(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("garbage"), []byte("ld.so-1.7.0\x00\xff\xff\xff\xff"),
		append([]byte("glibc-ld.so.cache1.1\xff\xff\xff\x7f"), make([]byte, 24)...)} {
		if _, err := ParseLDCache(b); err == nil {
			t.Errorf("%q: accepted", b)
		}
	}
	// An empty cache is a cache.
	if m, err := ParseLDCache(append([]byte("glibc-ld.so.cache1.1"), make([]byte, 28)...)); err != nil || len(m) != 0 {
		t.Errorf("empty cache: %v %v", m, err)
	}
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return st.Ino
	}
	return 0
}

// The closure reads ELF files and the ld.so.cache of an untrusted image: no input may crash it.
func FuzzParseLDCache(f *testing.F) {
	f.Add([]byte("glibc-ld.so.cache1.1" + strings.Repeat("\x00", 28)))
	f.Add([]byte("ld.so-1.7.0\x00\x01\x00\x00\x00" + strings.Repeat("\x00", 12) + "glibc-ld.so.cache1.1\x01\x00\x00\x00" + strings.Repeat("\xff", 48)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseLDCache(b)
		if err == nil {
			for k, v := range m {
				if k == "" || len(v) == 0 {
					t.Fatalf("empty entry %q %v", k, v)
				}
			}
		}
	})
}
