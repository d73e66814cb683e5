package rootfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// hostELFFiles lists up to n ELF files of the host: executables and libraries.
func hostELFFiles(t testing.TB, n int) []string {
	var out []string
	for _, glob := range []string{"/usr/bin/*", "/usr/sbin/*", "/usr/lib/x86_64-linux-gnu/*.so*", "/usr/lib/x86_64-linux-gnu/*/*.so*", "/usr/local/go/bin/*"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			if len(out) == n {
				return out
			}
			fi, err := os.Lstat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			magic := make([]byte, 4)
			f.ReadAt(magic, 0)
			f.Close()
			if string(magic) == elf.ELFMAG {
				out = append(out, p)
			}
		}
	}
	return out
}

// On the host's own, trusted, files, the bounded reader finds what debug/elf finds.
func TestReadELFMatchesDebugELF(t *testing.T) {
	files := hostELFFiles(t, 400)
	if len(files) < 10 {
		t.Skipf("only %d ELF files on the host", len(files))
	}
	static, dynamic := 0, 0
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readELF(f)
		ef, eerr := elf.NewFile(f)
		if eerr != nil {
			f.Close()
			t.Logf("%s: debug/elf: %v", p, eerr)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			f.Close()
			continue
		}
		want := elfFile{Class: ef.Class, Machine: ef.Machine}
		for _, prog := range ef.Progs {
			if prog.Type == elf.PT_INTERP && want.Interp == "" {
				b := make([]byte, prog.Filesz)
				prog.ReadAt(b, 0)
				want.Interp = string(bytes.TrimRight(b, "\x00"))
			}
		}
		want.Needed, _ = ef.DynString(elf.DT_NEEDED)
		want.RPath, _ = ef.DynString(elf.DT_RPATH)
		want.RunPath, _ = ef.DynString(elf.DT_RUNPATH)
		f.Close()
		if got.Class != want.Class || got.Machine != want.Machine || got.Interp != want.Interp ||
			!slices.Equal(got.Needed, want.Needed) || !slices.Equal(got.RPath, want.RPath) || !slices.Equal(got.RunPath, want.RunPath) {
			t.Errorf("%s:\n read      %+v\n debug/elf %+v", p, *got, want)
		}
		if len(want.Needed) > 0 {
			dynamic++
		} else {
			static++
		}
	}
	if dynamic == 0 {
		t.Fatalf("none of %d files has a DT_NEEDED", len(files))
	}
	t.Logf("%d files with libraries, %d without", dynamic, static)
}

// Truncations and corruptions of a real ELF file give an ErrELF, never a panic.
func TestReadELFDamaged(t *testing.T) {
	files := hostELFFiles(t, 1)
	if len(files) == 0 {
		t.Skip("no ELF file on the host")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 3, 4, 20, 51, 52, 63, 64, 100, 1000, 4096} {
		if n > len(b) {
			continue
		}
		if _, err := readELF(bytes.NewReader(b[:n])); !errors.Is(err, ErrELF) {
			t.Errorf("%s cut to %d bytes: %v", files[0], n, err)
		}
	}
	if _, err := readELF(bytes.NewReader(b)); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
}

// minimalELF is a small dynamic 64-bit ELF file: an interpreter, two DT_NEEDED and a DT_RUNPATH, its string
// table found through DT_STRTAB's address in its PT_LOAD segment.
func minimalELF() []byte {
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_DYN), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 3}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, []elf.Prog64{
		{Type: uint32(elf.PT_LOAD), Off: 0, Vaddr: 0x1000, Filesz: 1024},
		{Type: uint32(elf.PT_INTERP), Off: 256, Filesz: 11},
		{Type: uint32(elf.PT_DYNAMIC), Off: 512, Filesz: 96},
	})
	at := func(off int) { b.Write(make([]byte, off-b.Len())) }
	at(256)
	b.WriteString("/lib/ld.so\x00")
	at(512)
	binary.Write(&b, binary.LittleEndian, []elf.Dyn64{
		{Tag: int64(elf.DT_NEEDED), Val: 1}, {Tag: int64(elf.DT_NEEDED), Val: 11}, {Tag: int64(elf.DT_RUNPATH), Val: 21},
		{Tag: int64(elf.DT_STRTAB), Val: 0x1000 + 768}, {Tag: int64(elf.DT_STRSZ), Val: 64}, {Tag: int64(elf.DT_NULL)},
	})
	at(768)
	b.WriteString("\x00libfoo.so\x00libbar.so\x00$ORIGIN/../lib\x00")
	at(1024)
	return b.Bytes()
}

func TestReadELFMinimal(t *testing.T) {
	got, err := readELF(bytes.NewReader(minimalELF()))
	if err != nil {
		t.Fatal(err)
	}
	want := elfFile{Class: elf.ELFCLASS64, Machine: elf.EM_X86_64, Interp: "/lib/ld.so",
		Needed: []string{"libfoo.so", "libbar.so"}, RunPath: []string{"$ORIGIN/../lib"}}
	if got.Class != want.Class || got.Machine != want.Machine || got.Interp != want.Interp || !slices.Equal(got.Needed, want.Needed) ||
		got.RPath != nil || !slices.Equal(got.RunPath, want.RunPath) {
		t.Fatalf("%+v, want %+v", *got, want)
	}
}

// readELF reads untrusted files: no input may crash it, whatever its claims.
func FuzzReadELF(f *testing.F) {
	f.Add(minimalELF())
	f.Add([]byte(elf.ELFMAG + "\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ef, err := readELF(bytes.NewReader(b))
		if err == nil && len(ef.Needed)+len(ef.RPath)+len(ef.RunPath) > maxDynamic/8 {
			t.Fatalf("%d strings", len(ef.Needed)+len(ef.RPath)+len(ef.RunPath))
		}
	})
}
