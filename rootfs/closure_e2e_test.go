package rootfs_test

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimoci/slimoci/rootfs"
)

// arm64Layout is the test bed's python sample built for linux/arm64 (testdata/testbed.sh).
const arm64Layout = "python-arm64"

// The closure of python3 in the real arm64 image (Debian bookworm for arm64, its python3 built for it): every
// library it needs, the interpreter and what glibc dlopens are arm64 files under /usr/lib/aarch64-linux-gnu,
// found as the arm64 ld.so finds them, although x86-64 libraries of the same names come first on the
// LD_LIBRARY_PATH; the image's ld.so.cache, written by the arm64 ldconfig, is read with its arm64 flags; and
// the closure keeps no x86-64 file.
func TestE2EClosureArm64(t *testing.T) {
	bed := needBed(t)
	layout := bed.Layout(arm64Layout)
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Skipf("the arm64 test bed is not built (%v): run `make testbed`", err)
	}
	tree := unpack(t, layout, scratch(t))
	if tree.Config.Architecture != "arm64" {
		t.Fatalf("the image's architecture is %q", tree.Config.Architecture)
	}
	python, err := tree.Index.Resolve("/usr/bin/python3", true)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(filepath.Join(tree.Dir, python))
	if err != nil {
		t.Fatal(err)
	}
	needed, err := f.ImportedLibraries()
	f.Close()
	if err != nil || f.Machine != elf.EM_AARCH64 || len(needed) == 0 {
		t.Fatalf("%s: %v %v needs %q", python, f.Machine, err, needed)
	}

	// The host's x86-64 libraries of the same names, where the arm64 ld.so looks first.
	const x86 = "/opt/x86-64"
	if err := os.MkdirAll(filepath.Join(tree.Dir, x86), 0o755); err != nil {
		t.Fatal(err)
	}
	tree.Index.Add(&rootfs.Entry{Path: "/opt", Type: rootfs.TypeDir, Mode: 0o755})
	tree.Index.Add(&rootfs.Entry{Path: x86, Type: rootfs.TypeDir, Mode: 0o755})
	planted := 0
	for _, lib := range append(needed, "libgcc_s.so.1") {
		b, err := os.ReadFile(filepath.Join("/lib/x86_64-linux-gnu", lib))
		if err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(tree.Dir, x86, lib), b, 0o644); err != nil {
			t.Fatal(err)
		}
		tree.Index.Add(&rootfs.Entry{Path: x86 + "/" + lib, Type: rootfs.TypeFile, Size: int64(len(b)), Mode: 0o644})
		planted++
	}
	if planted == 0 {
		t.Fatalf("none of %q is in the host's /lib/x86_64-linux-gnu", needed)
	}

	cache, err := os.ReadFile(filepath.Join(tree.Dir, "etc/ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := rootfs.ParseLDCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	libc := entries["libc.so.6"]
	if len(libc) == 0 || libc[0].Flags != 0x0a03 { // FLAG_AARCH64_LIB64 | FLAG_ELF_LIBC6
		t.Errorf("the image's ld.so.cache lists libc.so.6 as %+v, want flags 0xa03", libc)
	}

	// With the image's cache, and without one (a distroless image has none): then the arm64 default
	// directories find the libraries.
	for _, withCache := range []bool{true, false} {
		t.Run(map[bool]string{true: "ld.so.cache", false: "no ld.so.cache"}[withCache], func(t *testing.T) {
			if !withCache {
				if err := os.Remove(filepath.Join(tree.Dir, "etc/ld.so.cache")); err != nil {
					t.Fatal(err)
				}
			}
			c, err := tree.ComputeClosure(rootfs.ClosureOptions{
				Observed: map[string][]string{"/usr/bin/python3": {"exec"}},
				Env:      append(append([]string(nil), tree.Config.Config.Env...), "LD_LIBRARY_PATH="+x86),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(c.MissingLibs) != 0 || len(c.Unreadable) != 0 {
				t.Errorf("missing libraries %q, unreadable %q", c.MissingLibs, c.Unreadable)
			}
			for _, lib := range append(needed, "libgcc_s.so.1", "libnss_files.so.2", "ld-linux-aarch64.so.1") {
				p := "/usr/lib/aarch64-linux-gnu/" + lib
				if _, ok := c.Keep[p]; !ok {
					t.Errorf("%s is not kept", p)
				}
			}
			// PT_INTERP is /lib/ld-linux-aarch64.so.1: /lib is a symlink to usr/lib, and the name there one to
			// aarch64-linux-gnu/ld-linux-aarch64.so.1.
			if why := c.Keep["/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"]; !slices.Contains(why, rootfs.ReasonELFInterp+":"+python) {
				t.Errorf("the interpreter is kept for %q", why)
			}
			arm, other := 0, 0
			for p := range c.Keep {
				e, _ := tree.Index.Lookup(p)
				if e == nil || e.Type != rootfs.TypeFile {
					continue
				}
				b := make([]byte, 20)
				fh, err := os.Open(filepath.Join(tree.Dir, p))
				if err != nil {
					t.Fatal(err)
				}
				n, _ := fh.Read(b)
				fh.Close()
				if n < 20 || !bytes.HasPrefix(b, []byte(elf.ELFMAG)) {
					continue
				}
				if m := elf.Machine(uint16(b[18]) | uint16(b[19])<<8); m == elf.EM_AARCH64 {
					arm++
				} else {
					other++
					t.Errorf("kept %s, an ELF file for %v (%s)", p, m, strings.Join(c.Keep[p], ", "))
				}
			}
			t.Logf("python3 needs %q; the closure keeps %d paths, %d of them arm64 ELF files", needed, len(c.Keep), arm)
			if arm < len(needed)+2 {
				t.Errorf("only %d arm64 ELF files kept", arm)
			}
		})
	}
}
