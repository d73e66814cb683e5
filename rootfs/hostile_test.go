package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimoci/slimoci/internal/testbed"
)

// The image is hostile: whatever it puts where slimoci reads a file, reading never blocks, never reads a
// device of the host, and never allocates more than a bound. Each test attacks for real and fails, rather than
// hangs, when the defence regresses.

// within runs fn and fails the test unless it returns within d.
func within[T any](t *testing.T, d time.Duration, what string, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s: still running after %v (blocked on the file?)", what, d)
		panic("unreachable")
	}
}

// treeOf makes a Tree of a directory built on disk, indexing what is there as Unpack would have.
func treeOf(t *testing.T, dir string) *Tree {
	t.Helper()
	ix := NewIndex()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		e := &Entry{Path: filepath.Clean("/" + rel), Mode: int64(fi.Mode().Perm()), Layer: 0}
		switch m := fi.Mode(); {
		case m.IsRegular():
			e.Type, e.Size = TypeFile, fi.Size()
		case m.IsDir():
			e.Type = TypeDir
		case m&fs.ModeSymlink != 0:
			e.Type = TypeSymlink
			e.Linkname, _ = os.Readlink(p)
		case m&fs.ModeNamedPipe != 0:
			e.Type = TypeFifo
		case m&fs.ModeCharDevice != 0:
			e.Type = TypeChar
		default:
			e.Type = TypeBlock
		}
		ix.Add(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return &Tree{Dir: dir, Index: ix}
}

func mknod(t *testing.T, p string, mode uint32, major, minor uint32) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := unix.Mknod(p, mode, int(unix.Mkdev(major, minor))); err != nil {
		t.Skipf("mknod %s: %v", p, err)
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := unix.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sparse makes a file of size bytes, a hole but for what is written at its start.
func sparse(t *testing.T, p string, head []byte, size int64) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, head, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
}

func TestReadHostileFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, root string)
		want  error
		text  string
		bound bool // the attack is on the size: Open, which does not bound reads, opens it
	}{
		{"fifo", func(t *testing.T, root string) { mkfifo(t, filepath.Join(root, "etc/passwd")) },
			ErrNotRegular, "opening /etc/passwd: not a regular file: it is a FIFO", false},
		{"/dev/null", func(t *testing.T, root string) {
			mknod(t, filepath.Join(root, "etc/passwd"), unix.S_IFCHR|0o666, 1, 3)
		}, ErrNotRegular, "opening /etc/passwd: not a regular file: it is a character device 1:3", false},
		{"/dev/zero", func(t *testing.T, root string) {
			mknod(t, filepath.Join(root, "etc/passwd"), unix.S_IFCHR|0o666, 1, 5)
		}, ErrNotRegular, "it is a character device 1:5", false},
		{"symlink to the tree's /dev/zero", func(t *testing.T, root string) {
			mknod(t, filepath.Join(root, "dev/zero"), unix.S_IFCHR|0o666, 1, 5)
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.Symlink("/dev/zero", filepath.Join(root, "etc/passwd"))
		}, ErrNotRegular, "it is a character device 1:5", false},
		{"block device", func(t *testing.T, root string) {
			mknod(t, filepath.Join(root, "etc/passwd"), unix.S_IFBLK|0o600, 7, 0)
		}, ErrNotRegular, "it is a block device 7:0", false},
		{"directory", func(t *testing.T, root string) { os.MkdirAll(filepath.Join(root, "etc/passwd"), 0o755) },
			ErrNotRegular, "it is a directory", false},
		{"9 MiB", func(t *testing.T, root string) {
			sparse(t, filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 9<<20)
		},
			ErrTooLarge, "reading /etc/passwd: 9 MiB is over the 4 MiB limit", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.make(t, root)
			tree := &Tree{Dir: root}
			err := within(t, 5*time.Second, "ReadFile", func() error { _, err := tree.ReadFile("/etc/passwd"); return err })
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("ReadFile: %v, want %v naming %q", err, tc.want, tc.text)
			}
			if tc.bound {
				return
			}
			err = within(t, 5*time.Second, "Open", func() error {
				f, err := tree.Open("/etc/passwd")
				if err == nil {
					f.Close()
				}
				return err
			})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Open: %v, want %v naming %q", err, tc.want, tc.text)
			}
		})
	}
	t.Run("regular", func(t *testing.T) {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644)
		b, err := (&Tree{Dir: root}).ReadFile("/etc/passwd")
		if err != nil || string(b) != "root:x:0:0::/:/bin/sh\n" {
			t.Fatalf("%q %v", b, err)
		}
		if _, err := (&Tree{Dir: root}).ReadFile("/etc/group"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("missing file: %v", err)
		}
	})
}

// Checking a path opens nothing of what it names: a FIFO's writer, waiting for a reader, keeps waiting (a
// device node's driver is not woken either: a watchdog starts ticking when opened).
func TestCheckingOpensNothing(t *testing.T) {
	root := t.TempDir()
	fifo := filepath.Join(root, "etc/passwd")
	mkfifo(t, fifo)
	opened := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until the FIFO is opened for reading
		if err == nil {
			f.Close()
		}
		opened <- err
	}()
	t.Cleanup(func() {
		// Release the writer if it still waits.
		if fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			select {
			case <-opened:
			case <-time.After(5 * time.Second):
			}
			unix.Close(fd)
		}
	})
	time.Sleep(50 * time.Millisecond) // let the writer reach its open
	err := within(t, 5*time.Second, "ReadFile", func() error { _, err := (&Tree{Dir: root}).ReadFile("/etc/passwd"); return err })
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("ReadFile of a FIFO: %v", err)
	}
	select {
	case err := <-opened:
		t.Fatalf("the FIFO was opened for reading (writer's open returned %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// A closure over an image whose /etc/ld.so.cache is a FIFO fails at once, naming it, rather than waiting for
// a writer forever.
func TestClosureFIFO(t *testing.T) {
	layer := tarOf(t, dir("etc"), ent{name: "etc/ld.so.cache", typ: tar.TypeFifo, mode: 0o644}, dir("bin"), file("bin/app", "#!/bin/sh\n"))
	tree, err := Unpack(context.Background(), imageOf(t, layer), filepath.Join(t.TempDir(), "rootfs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = within(t, 10*time.Second, "ComputeClosure", func() error {
		_, err := tree.ComputeClosure(ClosureOptions{Observed: map[string][]string{"/bin/app": {"exec"}}})
		return err
	})
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "/etc/ld.so.cache") {
		t.Fatalf("closure over a FIFO ld.so.cache: %v", err)
	}
}

// hostELF copies an ELF executable of the host and its libc into root, returning the executable's tree path.
func hostELF(t *testing.T, root string) (app, libc string) {
	t.Helper()
	bin, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Skip("no /bin/true")
	}
	lib, err := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Skip("no x86-64 glibc on the host")
	}
	for from, to := range map[string]string{bin: "usr/bin/app", lib: "usr/lib/x86_64-linux-gnu/libc.so.6"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(to)), 0o755)
		os.WriteFile(filepath.Join(root, to), b, 0o755)
	}
	return "/usr/bin/app", "/usr/lib/x86_64-linux-gnu/libc.so.6"
}

// What the closure reads of a tree that turns against it: an oversize ld.so.cache or nsswitch.conf, a FIFO
// nsswitch.conf, a library the index says is a file and the disk has as /dev/zero.
func TestClosureHostileFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, root string) // after the index is made
		want   error
		text   string
	}{
		{"9 MiB ld.so.cache", func(t *testing.T, root string) {
			sparse(t, filepath.Join(root, "etc/ld.so.cache"), []byte("glibc-ld.so.cache1.1"), 9<<20)
		}, ErrTooLarge, "reading /etc/ld.so.cache: 9 MiB is over the 4 MiB limit"},
		{"fifo nsswitch.conf", func(t *testing.T, root string) {
			mkfifo(t, filepath.Join(root, "etc/nsswitch.conf"))
		}, ErrNotRegular, "opening /etc/nsswitch.conf: not a regular file: it is a FIFO"},
		{"5 GiB nsswitch.conf", func(t *testing.T, root string) {
			sparse(t, filepath.Join(root, "etc/nsswitch.conf"), []byte("passwd: files\n"), 5<<30)
		}, ErrTooLarge, "reading /etc/nsswitch.conf: 5 GiB is over the 4 MiB limit"},
		{"libc is /dev/zero on disk", func(t *testing.T, root string) {
			p := filepath.Join(root, "usr/lib/x86_64-linux-gnu/libc.so.6")
			os.Remove(p)
			mknod(t, p, unix.S_IFCHR|0o666, 1, 5)
		}, ErrNotRegular, "opening /usr/lib/x86_64-linux-gnu/libc.so.6: not a regular file: it is a character device 1:5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			app, _ := hostELF(t, root)
			tree := treeOf(t, root)
			tc.attack(t, root)
			err := within(t, 10*time.Second, "ComputeClosure", func() error {
				_, err := tree.ComputeClosure(ClosureOptions{Observed: map[string][]string{app: {"exec"}}})
				return err
			})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("closure: %v, want %v naming %q", err, tc.want, tc.text)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		root := t.TempDir()
		app, libc := hostELF(t, root)
		c, err := treeOf(t, root).ComputeClosure(ClosureOptions{Observed: map[string][]string{app: {"exec"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Keep[libc]; !ok || len(c.Unreadable) != 0 {
			t.Fatalf("libc not kept (%v) or unreadable files %v", c.Keep, c.Unreadable)
		}
	})
}

// craftedELF writes a 64-bit x86-64 ELF file of size bytes (a hole past its headers) with the given program
// and section headers; sections follow the program headers, at shoff.
func craftedELF(t *testing.T, p string, size int64, progs []elf.Prog64, shnum uint16, shoff uint64, sections []elf.Section64) {
	t.Helper()
	var buf bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Shoff: shoff, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs)), Shentsize: 64, Shnum: shnum}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&buf, binary.LittleEndian, h)
	binary.Write(&buf, binary.LittleEndian, progs)
	if shoff != 0 {
		buf.Write(make([]byte, int(shoff)-buf.Len()))
		binary.Write(&buf, binary.LittleEndian, sections)
	}
	sparse(t, p, buf.Bytes(), size)
}

// ELF files that claim a million section headers or a 256 MiB dynamic segment, in sparse files: debug/elf
// reads what they claim (section headers, .dynamic) into memory; the closure reads a bounded part of them.
func TestClosureCraftedELF(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, p string)
		// unreadable is what Closure.Unreadable says of the file; "" when it is read fine.
		unreadable string
	}{
		{"a million section headers", func(t *testing.T, p string) {
			const n = 1 << 20
			// Section 0 carries the count (e_shnum 0, as for files of more than 0xff00 sections).
			craftedELF(t, p, 4096+n*64, []elf.Prog64{{Type: uint32(elf.PT_LOAD), Filesz: 4096}}, 0, 4096,
				[]elf.Section64{{Type: uint32(elf.SHT_NULL), Size: n}})
		}, ""},
		{"a 256 MiB dynamic segment", func(t *testing.T, p string) {
			const n = 256 << 20
			craftedELF(t, p, 4096+n, []elf.Prog64{{Type: uint32(elf.PT_LOAD), Filesz: 4096}, {Type: uint32(elf.PT_DYNAMIC), Off: 4096, Filesz: n}},
				2, 512, []elf.Section64{{}, {Type: uint32(elf.SHT_DYNAMIC), Off: 4096, Size: n, Entsize: 16}})
		}, "/usr/bin/app: invalid ELF file: PT_DYNAMIC: 256 MiB is over the 256 KiB limit"},
		{"a 4 GiB PT_INTERP", func(t *testing.T, p string) {
			craftedELF(t, p, 8192, []elf.Prog64{{Type: uint32(elf.PT_INTERP), Off: 4096, Filesz: 4 << 30}}, 0, 0, nil)
		}, "/usr/bin/app: invalid ELF file: PT_INTERP: 4 GiB is over the 4 KiB limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.make(t, filepath.Join(root, "usr/bin/app"))
			tree := treeOf(t, root)
			var c *Closure
			var err error
			n := testbed.Allocated(func() {
				within(t, 20*time.Second, "ComputeClosure", func() error {
					c, err = tree.ComputeClosure(ClosureOptions{Observed: map[string][]string{"/usr/bin/app": {"exec"}}})
					return err
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if n > 16<<20 {
				t.Errorf("the closure of one crafted file allocated %d MiB", n>>20)
			}
			if tc.unreadable == "" && len(c.Unreadable) != 0 || tc.unreadable != "" && (len(c.Unreadable) != 1 || c.Unreadable[0] != tc.unreadable) {
				t.Errorf("unreadable %q, want %q", c.Unreadable, tc.unreadable)
			}
			if _, ok := c.Keep["/usr/bin/app"]; !ok {
				t.Error("the crafted file is not kept")
			}
		})
	}
}
