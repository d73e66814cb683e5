package rootfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// The closure reads of an ELF file only what ld.so reads to load it: the file header, the program headers, the
// PT_INTERP path and the strings the PT_DYNAMIC segment names. debug/elf is not used on the image's files:
// NewFile reads every section header (a count section 0 may set to 2^32) and the whole section name table,
// DynString the whole .dynamic and .dynstr, so a crafted or sparse file of terabytes makes it allocate as much
// as the file claims. Every read here has a bound, whatever the file says. (Segments, not sections, are also
// what ld.so reads: a file with its section headers stripped loads, and is read, the same.)
const (
	// maxPhdrs bounds the program header table, as the kernel's ELF loader does (fs/binfmt_elf.c, 64 KiB).
	maxPhdrs = 64 << 10
	// maxInterp is PATH_MAX: PT_INTERP is a path.
	maxInterp = 4096
	// maxDynamic bounds the PT_DYNAMIC segment: 16384 entries of 16 bytes; real files have under 100.
	maxDynamic = 256 << 10
	// maxDynString bounds one DT_NEEDED, DT_RPATH or DT_RUNPATH string (a long RPATH is a few KiB);
	// maxDynStrings all of those of one file.
	maxDynString  = 64 << 10
	maxDynStrings = 1 << 20
)

// elfFile is what the closure needs of an ELF file.
type elfFile struct {
	Class   elf.Class
	Data    elf.Data
	Machine elf.Machine
	// Flags is e_flags: on ARM, RISC-V and ppc64 it tells the ABI (see arch).
	Flags uint32
	// Interp is the PT_INTERP path, "" for none.
	Interp string
	// Needed, RPath and RunPath are the DT_NEEDED, DT_RPATH and DT_RUNPATH strings, in the file's order.
	Needed, RPath, RunPath []string
}

// header is the ELF identity of f, as readELFHeader gives it.
func (f *elfFile) header() *elfHeader {
	return &elfHeader{class: f.Class, data: f.Data, machine: f.Machine, flags: f.Flags}
}

// elfHeader is the part of the ELF file header the closure uses.
type elfHeader struct {
	class     elf.Class
	data      elf.Data
	machine   elf.Machine
	flags     uint32
	bo        binary.ByteOrder
	phoff     uint64
	phentsize int
	phnum     int
}

// readELFHeader reads the file header of the ELF file r.
func readELFHeader(r io.ReaderAt) (*elfHeader, error) {
	var b [64]byte
	n, err := r.ReadAt(b[:], 0)
	if n < 52 {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %d bytes, too short for a file header", ErrELF, n)
		}
		return nil, err
	}
	if string(b[:4]) != elf.ELFMAG {
		return nil, fmt.Errorf("%w: no ELF magic", ErrELF)
	}
	h := &elfHeader{class: elf.Class(b[elf.EI_CLASS]), data: elf.Data(b[elf.EI_DATA])}
	switch h.data {
	case elf.ELFDATA2LSB:
		h.bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		h.bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w: unknown data encoding %d", ErrELF, b[elf.EI_DATA])
	}
	if v := elf.Version(b[elf.EI_VERSION]); v != elf.EV_CURRENT {
		return nil, fmt.Errorf("%w: unknown ELF version %d", ErrELF, v)
	}
	h.machine = elf.Machine(h.bo.Uint16(b[18:20]))
	switch h.class {
	case elf.ELFCLASS32:
		h.phoff = uint64(h.bo.Uint32(b[28:32]))
		h.flags = h.bo.Uint32(b[36:40])
		h.phentsize, h.phnum = int(h.bo.Uint16(b[42:44])), int(h.bo.Uint16(b[44:46]))
	case elf.ELFCLASS64:
		if n < 64 {
			return nil, fmt.Errorf("%w: %d bytes, too short for a 64-bit file header", ErrELF, n)
		}
		h.phoff = h.bo.Uint64(b[32:40])
		h.flags = h.bo.Uint32(b[48:52])
		h.phentsize, h.phnum = int(h.bo.Uint16(b[54:56])), int(h.bo.Uint16(b[56:58]))
	default:
		return nil, fmt.Errorf("%w: unknown class %d", ErrELF, b[elf.EI_CLASS])
	}
	return h, nil
}

// segment is a program header's type and where its bytes are, in the file and in memory.
type segment struct {
	typ               elf.ProgType
	off, vaddr, files uint64
}

// readELF reads what ld.so reads of the ELF file r to load it.
func readELF(r io.ReaderAt) (*elfFile, error) {
	h, err := readELFHeader(r)
	if err != nil {
		return nil, err
	}
	f := &elfFile{Class: h.class, Data: h.data, Machine: h.machine, Flags: h.flags}
	if h.phnum == 0 {
		return f, nil // a relocatable object: nothing to load
	}
	want := 32
	if h.class == elf.ELFCLASS64 {
		want = 56
	}
	if h.phentsize != want {
		return nil, fmt.Errorf("%w: program header size %d, want %d", ErrELF, h.phentsize, want)
	}
	if n := int64(h.phnum) * int64(h.phentsize); n > maxPhdrs {
		return nil, fmt.Errorf("%w: program headers: %w", ErrELF, &LimitError{Size: n, Limit: maxPhdrs})
	}
	ph, err := readAt(r, h.phoff, uint64(h.phnum*h.phentsize), "program headers")
	if err != nil {
		return nil, err
	}
	var loads []segment
	var interp, dynamic *segment
	for i := 0; i < h.phnum; i++ {
		b := ph[i*h.phentsize:]
		var s segment
		if h.class == elf.ELFCLASS32 {
			s = segment{typ: elf.ProgType(h.bo.Uint32(b[0:])), off: uint64(h.bo.Uint32(b[4:])),
				vaddr: uint64(h.bo.Uint32(b[8:])), files: uint64(h.bo.Uint32(b[16:]))}
		} else {
			s = segment{typ: elf.ProgType(h.bo.Uint32(b[0:])), off: h.bo.Uint64(b[8:]),
				vaddr: h.bo.Uint64(b[16:]), files: h.bo.Uint64(b[32:])}
		}
		switch s.typ {
		case elf.PT_LOAD:
			loads = append(loads, s)
		case elf.PT_INTERP:
			if interp == nil {
				interp = &s
			}
		case elf.PT_DYNAMIC:
			if dynamic == nil {
				dynamic = &s
			}
		}
	}
	if interp != nil {
		if interp.files > maxInterp {
			return nil, fmt.Errorf("%w: PT_INTERP: %w", ErrELF, &LimitError{Size: int64(min(interp.files, math.MaxInt64)), Limit: maxInterp})
		}
		b, err := readAt(r, interp.off, interp.files, "PT_INTERP")
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		f.Interp = string(b)
	}
	if dynamic == nil {
		return f, nil // static
	}
	if err := f.readDynamic(r, h, dynamic, loads); err != nil {
		return nil, err
	}
	return f, nil
}

// readDynamic reads the DT_NEEDED, DT_RPATH and DT_RUNPATH strings of the PT_DYNAMIC segment d. The string
// table is found as ld.so finds it: DT_STRTAB is an address, mapped by a PT_LOAD segment.
func (f *elfFile) readDynamic(r io.ReaderAt, h *elfHeader, d *segment, loads []segment) error {
	if d.files > maxDynamic {
		return fmt.Errorf("%w: PT_DYNAMIC: %w", ErrELF, &LimitError{Size: int64(min(d.files, math.MaxInt64)), Limit: maxDynamic})
	}
	b, err := readAt(r, d.off, d.files, "PT_DYNAMIC")
	if err != nil {
		return err
	}
	size := 8
	if h.class == elf.ELFCLASS64 {
		size = 16
	}
	type ref struct {
		tag elf.DynTag
		off uint64
	}
	var refs []ref
	var strtab, strsz uint64
	var haveStrtab, haveStrsz bool
entries:
	for ; len(b) >= size; b = b[size:] {
		var tag elf.DynTag
		var v uint64
		if size == 8 {
			tag, v = elf.DynTag(int32(h.bo.Uint32(b))), uint64(h.bo.Uint32(b[4:]))
		} else {
			tag, v = elf.DynTag(int64(h.bo.Uint64(b))), h.bo.Uint64(b[8:])
		}
		switch tag {
		case elf.DT_NULL:
			break entries
		case elf.DT_NEEDED, elf.DT_RPATH, elf.DT_RUNPATH:
			refs = append(refs, ref{tag, v})
		case elf.DT_STRTAB:
			strtab, haveStrtab = v, true
		case elf.DT_STRSZ:
			strsz, haveStrsz = v, true
		}
	}
	if len(refs) == 0 {
		return nil
	}
	if !haveStrtab {
		return fmt.Errorf("%w: DT_NEEDED without DT_STRTAB", ErrELF)
	}
	// Where the table is in the file, and how much of it the file holds.
	var off, avail uint64
	found := false
	for _, l := range loads {
		if strtab >= l.vaddr && strtab-l.vaddr < l.files {
			off, avail, found = l.off+(strtab-l.vaddr), l.files-(strtab-l.vaddr), true
			break
		}
	}
	if !found {
		return fmt.Errorf("%w: DT_STRTAB %#x is in no PT_LOAD segment", ErrELF, strtab)
	}
	if haveStrsz && strsz < avail {
		avail = strsz
	}
	total := 0
	for _, x := range refs {
		if x.off >= avail {
			return fmt.Errorf("%w: %s string at %#x is past the string table's %d bytes", ErrELF, x.tag, x.off, avail)
		}
		s, err := readString(r, off+x.off, min(avail-x.off, maxDynString+1))
		if err != nil {
			return fmt.Errorf("%w: %s string: %w", ErrELF, x.tag, err)
		}
		if total += len(s); total > maxDynStrings {
			return fmt.Errorf("%w: dynamic strings: %w", ErrELF, &LimitError{Size: -1, Limit: maxDynStrings})
		}
		switch x.tag {
		case elf.DT_NEEDED:
			f.Needed = append(f.Needed, s)
		case elf.DT_RPATH:
			f.RPath = append(f.RPath, s)
		case elf.DT_RUNPATH:
			f.RunPath = append(f.RunPath, s)
		}
	}
	return nil
}

// readString reads a NUL-terminated string at off, of which at most max bytes (NUL included) are in the
// table. It reads in growing chunks: a short string costs a short read.
func readString(r io.ReaderAt, off, max uint64) (string, error) {
	var buf []byte
	for chunk := uint64(256); ; chunk *= 4 {
		n := min(chunk, max) - uint64(len(buf))
		b, err := readAt(r, off+uint64(len(buf)), n, "string")
		if err != nil {
			return "", err
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return string(append(buf, b[:i]...)), nil
		}
		buf = append(buf, b...)
		if uint64(len(buf)) >= max {
			if max > maxDynString {
				return "", &LimitError{Size: -1, Limit: maxDynString}
			}
			return "", errors.New("not terminated in the string table")
		}
	}
}

// readAt reads n bytes at off, which the callers have bounded, failing unless the file holds them all.
func readAt(r io.ReaderAt, off, n uint64, what string) ([]byte, error) {
	if off > math.MaxInt64-n {
		return nil, fmt.Errorf("%w: %s at %#x: past any file", ErrELF, what, off)
	}
	b := make([]byte, n)
	got, err := r.ReadAt(b, int64(off))
	if got == len(b) {
		return b, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s at %#x: the file ends first", ErrELF, what, off)
	}
	return nil, err
}
