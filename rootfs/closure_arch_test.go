package rootfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"testing"
)

// synthELF is a dynamic ELF file of any class, byte order, machine and e_flags: a PT_INTERP (when interp is
// set), DT_NEEDED and DT_RPATH strings, its string table found through DT_STRTAB's address in its PT_LOAD
// segment, as ld.so finds it.
func synthELF(class elf.Class, data elf.Data, machine elf.Machine, flags uint32, interp string, needed []string, rpath string) []byte {
	var bo binary.ByteOrder = binary.LittleEndian
	if data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	const interpOff, dynOff, strOff, size, vaddr = 256, 512, 1024, 2048, 0x1000
	var strs bytes.Buffer
	strs.WriteByte(0)
	str := func(s string) uint64 {
		off := uint64(strs.Len())
		strs.WriteString(s + "\x00")
		return off
	}
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	for _, n := range needed {
		dyns = append(dyns, dyn{elf.DT_NEEDED, str(n)})
	}
	if rpath != "" {
		dyns = append(dyns, dyn{elf.DT_RPATH, str(rpath)})
	}
	dyns = append(dyns, dyn{elf.DT_STRTAB, vaddr + strOff}, dyn{elf.DT_STRSZ, uint64(strs.Len())}, dyn{elf.DT_NULL, 0})
	typ := elf.ET_DYN
	var b bytes.Buffer
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS], ident[elf.EI_DATA], ident[elf.EI_VERSION] = byte(class), byte(data), byte(elf.EV_CURRENT)
	progs := []struct {
		typ             elf.ProgType
		off, vaddr, len uint64
	}{{elf.PT_LOAD, 0, vaddr, size}, {elf.PT_DYNAMIC, dynOff, vaddr + dynOff, uint64(len(dyns) * 16)}}
	if interp != "" {
		progs = append(progs, struct {
			typ             elf.ProgType
			off, vaddr, len uint64
		}{elf.PT_INTERP, interpOff, vaddr + interpOff, uint64(len(interp) + 1)})
	}
	if class == elf.ELFCLASS64 {
		binary.Write(&b, bo, elf.Header64{Ident: ident, Type: uint16(typ), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
			Phoff: 64, Flags: flags, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs))})
		for _, p := range progs {
			binary.Write(&b, bo, elf.Prog64{Type: uint32(p.typ), Off: p.off, Vaddr: p.vaddr, Filesz: p.len, Memsz: p.len})
		}
	} else {
		binary.Write(&b, bo, elf.Header32{Ident: ident, Type: uint16(typ), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
			Phoff: 64, Flags: flags, Ehsize: 52, Phentsize: 32, Phnum: uint16(len(progs))})
		b.Write(make([]byte, 64-b.Len()))
		for _, p := range progs {
			binary.Write(&b, bo, elf.Prog32{Type: uint32(p.typ), Off: uint32(p.off), Vaddr: uint32(p.vaddr), Filesz: uint32(p.len), Memsz: uint32(p.len)})
		}
	}
	at := func(off int) { b.Write(make([]byte, off-b.Len())) }
	at(interpOff)
	b.WriteString(interp)
	at(dynOff)
	for _, d := range dyns {
		if class == elf.ELFCLASS64 {
			binary.Write(&b, bo, elf.Dyn64{Tag: int64(d.tag), Val: d.val})
		} else {
			binary.Write(&b, bo, elf.Dyn32{Tag: int32(d.tag), Val: uint32(d.val)})
		}
	}
	at(strOff)
	b.Write(strs.Bytes())
	at(size)
	return b.Bytes()
}

// cacheEntry is one entry of a synthetic ld.so.cache.
type cacheEntry struct {
	soname, path string
	flags        int32
	hwcap        uint64
}

// hwcapExtension marks an entry for a glibc-hwcaps subdirectory (DL_CACHE_HWCAP_EXTENSION).
const hwcapExtension = 1 << 62

// ldCacheOf is an ld.so.cache in glibc's new format as ldconfig writes it on an architecture of byte order
// bo: its header's flags byte records that order (endian: 2 little, 3 big; 0 as before glibc 2.33), each
// entry has its flags and hwcap, and string offsets count from the header.
func ldCacheOf(bo binary.ByteOrder, endian byte, entries []cacheEntry) []byte {
	var strs bytes.Buffer
	offs := map[string]uint32{}
	base := uint32(48 + 24*len(entries))
	str := func(s string) uint32 {
		if o, ok := offs[s]; ok {
			return o
		}
		offs[s] = base + uint32(strs.Len())
		strs.WriteString(s + "\x00")
		return offs[s]
	}
	var b bytes.Buffer
	b.WriteString("glibc-ld.so.cache1.1")
	for _, e := range entries {
		str(e.soname)
		str(e.path)
	}
	binary.Write(&b, bo, uint32(len(entries)))
	binary.Write(&b, bo, uint32(strs.Len()))
	b.WriteByte(endian)
	b.Write(make([]byte, 48-b.Len()))
	for _, e := range entries {
		binary.Write(&b, bo, e.flags)
		binary.Write(&b, bo, [3]uint32{str(e.soname), str(e.path), 0})
		binary.Write(&b, bo, e.hwcap)
	}
	b.Write(strs.Bytes())
	return b.Bytes()
}

// withOldFormat puts the new-format cache after an old "ld.so-1.7.0" one of n entries, aligned to align
// bytes (8; 4 on i386), as ldconfig's compat format does.
func withOldFormat(bo binary.ByteOrder, n, align int, cache []byte) []byte {
	var b bytes.Buffer
	b.WriteString("ld.so-1.7.0\x00")
	binary.Write(&b, bo, uint32(n))
	b.Write(make([]byte, 12*n))
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	b.Write(cache)
	return b.Bytes()
}

// testArch is what the tests know of an architecture, written out here rather than read from the closure's
// table, so that a wrong table fails them.
type testArch struct {
	name    string
	class   elf.Class
	data    elf.Data
	machine elf.Machine
	flags   uint32 // e_flags
	triplet string
	interp  string
	// cacheFlags are ldconfig's flags for its libraries; wrongFlags an other architecture's its ld.so skips.
	cacheFlags, wrongFlags int32
	// platform is one AT_PLATFORM value, "" when the kernel gives none.
	platform string
	// decoy is the architecture of the same-named libraries that must not be taken: the multiarch pair, or
	// the same machine with the other float ABI or byte order.
	decoy string
	// hwcap is one of its glibc-hwcaps subdirectories, "" when glibc has none for it.
	hwcap string
}

var testArches = []testArch{
	{"amd64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64, 0, "x86_64-linux-gnu", "/lib64/ld-linux-x86-64.so.2", 0x303, 0x003, "x86_64", "386", "x86-64-v3"},
	{"386", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386, 0, "i386-linux-gnu", "/lib/ld-linux.so.2", 0x003, 0x303, "i686", "amd64", ""},
	{"arm64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64, 0, "aarch64-linux-gnu", "/lib/ld-linux-aarch64.so.1", 0xa03, 0x303, "aarch64", "amd64", ""},
	// EABI 5 (0x05000000) with the hard-float (0x400) or soft-float (0x200) mark, as gcc writes them.
	{"arm/v7", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM, 0x05000400, "arm-linux-gnueabihf", "/lib/ld-linux-armhf.so.3", 0x903, 0xb03, "v7l", "arm/v5", ""},
	{"arm/v5", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM, 0x05000200, "arm-linux-gnueabi", "/lib/ld-linux.so.3", 0xb03, 0x903, "v5l", "arm/v7", ""},
	// ELFv2 (e_flags 2) little-endian; its decoy is big-endian, its e_flags unset as on most ELFv1 files,
	// with the same cache flags: only the byte order tells them apart.
	{"ppc64le", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_PPC64, 2, "powerpc64le-linux-gnu", "/lib64/ld64.so.2", 0x503, 0x403, "power9", "ppc64", "power9"},
	{"ppc64", elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_PPC64, 0, "powerpc64-linux-gnu", "/lib64/ld64.so.1", 0x503, 0x403, "power8", "ppc64le", ""},
	{"s390x", elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_S390, 0, "s390x-linux-gnu", "/lib/ld64.so.1", 0x403, 0x303, "z15", "amd64", "z15"},
	// RVC (1) and the double-float ABI (4); the decoy is soft-float.
	{"riscv64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_RISCV, 0x5, "riscv64-linux-gnu", "/lib/ld-linux-riscv64-lp64d.so.1", 0x1003, 0x0f03, "", "riscv64/lp64", ""},
	{"riscv64/lp64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_RISCV, 0x1, "", "/lib/ld-linux-riscv64-lp64.so.1", 0x0f03, 0x1003, "", "riscv64", ""},
}

func testArchNamed(t *testing.T, name string) testArch {
	for _, a := range testArches {
		if a.name == name {
			return a
		}
	}
	t.Fatalf("no test architecture %s", name)
	return testArch{}
}

// lib is a library of a, with no dependencies.
func (a testArch) lib() string {
	return string(synthELF(a.class, a.data, a.machine, a.flags, "", nil, ""))
}

// The closure of an executable of each architecture, in a tree that also holds same-named libraries of
// another architecture (the multiarch pair, or the same machine with the other float ABI or byte order)
// where that architecture's ld.so would look first, and an ld.so.cache in that architecture's byte order
// listing both: each library is found where that architecture's ld.so finds it (its multiarch triplet's
// directories, /usr/lib, the cache entry of its flags and not the one of the other's or the one with its
// ELF machine but the other's flags, the glibc-hwcaps entry too, $LIB as Debian's, $PLATFORM as one of its
// kernels' AT_PLATFORM, none on RISC-V, the glibc-hwcaps subdirectories of its own names beside a
// directory's library), and no file of the other architecture is kept.
func TestClosureArchitectures(t *testing.T) {
	for _, a := range testArches {
		if a.triplet == "" {
			continue // no distribution of its own to build a tree like
		}
		t.Run(a.name, func(t *testing.T) {
			d := testArchNamed(t, a.decoy)
			tr := "/usr/lib/" + a.triplet
			other := "/usr/lib/" + d.triplet
			if d.triplet == "" {
				other = "/usr/lib64/lp64"
			}
			var bo binary.ByteOrder = binary.LittleEndian
			endian := byte(2)
			if a.data == elf.ELFDATA2MSB {
				bo, endian = binary.BigEndian, 3
			}
			app := synthELF(a.class, a.data, a.machine, a.flags, a.interp,
				[]string{"libc.so.6", "libdef.so.1", "liblast.so.1", "libcached.so.1", "librp.so.1", "libplat.so.1", "libhw.so.1"},
				"$ORIGIN/../$LIB/app:/opt/plat/$PLATFORM")
			files := map[string]string{
				"/usr/bin/app":       string(app),
				a.interp:             a.lib(),
				tr + "/libc.so.6":    a.lib(),
				other + "/libc.so.6": d.lib(),
				// A default directory searched before the one that has the library: another
				// architecture's file of the same name.
				"/lib/" + a.triplet + "/libdef.so.1": d.lib(), tr + "/libdef.so.1": a.lib(),
				"/lib/liblast.so.1": d.lib(), "/usr/lib/liblast.so.1": a.lib(),
				// In no default directory: the cache finds it.
				"/opt/other/libcached.so.1": d.lib(), "/opt/wrongflags/libcached.so.1": a.lib(),
				"/opt/cached/libcached.so.1": a.lib(), "/opt/cached/glibc-hwcaps/v3/libcached.so.1": a.lib(),
				"/opt/cached/glibc-hwcaps/v3/other/libcached.so.1": d.lib(),
				// $ORIGIN/../$LIB/app: Debian's $LIB is lib/TRIPLET; "lib" is tried too and holds the
				// other architecture's.
				tr + "/app/librp.so.1": a.lib(), "/usr/lib/app/librp.so.1": d.lib(),
				// $PLATFORM: a directory named for the other architecture's platform never matches;
				// on RISC-V, which has no AT_PLATFORM, ld.so drops the path and finds the default one.
				"/opt/plat/" + cmpOr(a.platform, "riscv64") + "/libplat.so.1": a.lib(),
				"/opt/plat/" + cmpOr(d.platform, "riscv") + "/libplat.so.1":   d.lib(),
				tr + "/libplat.so.1": a.lib(),
				// A glibc-hwcaps subdirectory of its own beside the library, one of another architecture's
				// name (a decoy of the other architecture on an earlier directory's).
				tr + "/libhw.so.1": a.lib(), tr + "/glibc-hwcaps/" + cmpOr(a.hwcap, "none") + "/libhw.so.1": a.lib(),
				tr + "/glibc-hwcaps/" + map[bool]string{true: "power10", false: "x86-64-v2"}[a.name == "amd64"] + "/libhw.so.1": a.lib(), "/lib/" + a.triplet + "/glibc-hwcaps/" + cmpOr(a.hwcap, "none") + "/libhw.so.1": d.lib(),
				// What glibc dlopens: libgcc_s, and the NSS module nsswitch.conf names.
				"/lib/" + a.triplet + "/libgcc_s.so.1": d.lib(), tr + "/libgcc_s.so.1": a.lib(),
				tr + "/libnss_files.so.2": a.lib(), other + "/libnss_files.so.2": d.lib(),
				"/etc/nsswitch.conf": "passwd: files\ngroup: files\n",
				"/etc/ld.so.cache": string(ldCacheOf(bo, endian, []cacheEntry{
					{"libc.so.6", other + "/libc.so.6", d.cacheFlags, 0},
					{"libc.so.6", tr + "/libc.so.6", a.cacheFlags, 0},
					{"libcached.so.1", "/opt/cached/glibc-hwcaps/v3/other/libcached.so.1", d.cacheFlags, hwcapExtension},
					{"libcached.so.1", "/opt/cached/glibc-hwcaps/v3/libcached.so.1", a.cacheFlags, hwcapExtension},
					{"libcached.so.1", "/opt/other/libcached.so.1", d.cacheFlags, 0},
					{"libcached.so.1", "/opt/wrongflags/libcached.so.1", a.wrongFlags, 0},
					{"libcached.so.1", "/opt/cached/libcached.so.1", a.cacheFlags, 0},
				})),
			}
			tree := synthTree(t, nil, files, nil)
			c, err := tree.ComputeClosure(ClosureOptions{Observed: map[string][]string{"/usr/bin/app": {"exec"}}})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"/usr/bin/app", a.interp, tr + "/libc.so.6", tr + "/libdef.so.1", "/usr/lib/liblast.so.1",
				"/opt/cached/libcached.so.1", "/opt/cached/glibc-hwcaps/v3/libcached.so.1", tr + "/app/librp.so.1",
				tr + "/libgcc_s.so.1", tr + "/libnss_files.so.2", tr + "/libhw.so.1"}
			if a.hwcap != "" {
				want = append(want, tr+"/glibc-hwcaps/"+a.hwcap+"/libhw.so.1")
			}
			if a.platform != "" {
				want = append(want, "/opt/plat/"+a.platform+"/libplat.so.1")
			} else {
				want = append(want, tr+"/libplat.so.1")
			}
			var got []string
			for p := range maps.Keys(c.Keep) {
				if e, _ := tree.Index.Lookup(p); e != nil && e.Type == TypeFile && strings.HasPrefix(files[p], elf.ELFMAG) {
					got = append(got, p)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("kept ELF files\n %q\nwant\n %q", got, want)
			}
			for _, p := range got {
				if files[p] == d.lib() {
					t.Errorf("kept %s, a %s file", p, d.name)
				}
			}
			if len(c.MissingLibs) != 0 || len(c.Unreadable) != 0 {
				t.Errorf("missing libraries %q, unreadable %q", c.MissingLibs, c.Unreadable)
			}
			if why := c.Keep["/usr/lib/liblast.so.1"]; !slices.Equal(why, []string{"elf-needed:/usr/bin/app"}) {
				t.Errorf("/usr/lib/liblast.so.1 kept for %q", why)
			}
		})
	}
}

func cmpOr(s, or string) string {
	if s != "" {
		return s
	}
	return or
}

// An ARM file that says neither hard- nor soft-float (an older or hand-made one) is taken for the image
// config's ABI: arm/v5 is armel, so it finds armel's libraries, and any other arm is armhf.
func TestClosureARMUnmarked(t *testing.T) {
	hf, el := testArchNamed(t, "arm/v7"), testArchNamed(t, "arm/v5")
	for _, tc := range []struct {
		variant, want string
	}{{"v5", "/usr/lib/arm-linux-gnueabi/libx.so.1"}, {"v7", "/usr/lib/arm-linux-gnueabihf/libx.so.1"}, {"", "/usr/lib/arm-linux-gnueabihf/libx.so.1"}} {
		t.Run("arm/"+tc.variant, func(t *testing.T) {
			tree := synthTree(t, nil, map[string]string{
				"/usr/bin/app":                           string(synthELF(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM, 0x05000000, "", []string{"libx.so.1"}, "")),
				"/usr/lib/arm-linux-gnueabihf/libx.so.1": hf.lib(),
				"/usr/lib/arm-linux-gnueabi/libx.so.1":   el.lib(),
			}, nil)
			tree.Config.Architecture, tree.Config.Variant = "arm", tc.variant
			c, err := tree.ComputeClosure(ClosureOptions{Observed: map[string][]string{"/usr/bin/app": {"exec"}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"/usr/lib/arm-linux-gnueabihf/libx.so.1", "/usr/lib/arm-linux-gnueabi/libx.so.1"} {
				if _, ok := c.Keep[p]; ok != (p == tc.want) {
					t.Errorf("%s kept: %v, want only %s", p, ok, tc.want)
				}
			}
		})
	}
}

// $ORIGIN, $LIB and $PLATFORM, bare or in braces, expand as ld.so's do on each architecture: every value
// $LIB and $PLATFORM may have, an element dropped when a token has no value, and what is no token kept.
func TestExpandTokens(t *testing.T) {
	for _, tc := range []struct {
		arch, in string
		want     []string
	}{
		{"arm64", "$ORIGIN/../$LIB", []string{"/o/../lib/aarch64-linux-gnu", "/o/../lib64", "/o/../lib"}},
		{"amd64", "${ORIGIN}/${PLATFORM}", []string{"/o/x86_64", "/o/haswell", "/o/xeon_phi"}},
		{"386", "/$LIB/$PLATFORM", []string{"/lib/i386-linux-gnu/i686", "/lib/i386-linux-gnu/i586", "/lib/i386-linux-gnu/i486",
			"/lib/i386-linux-gnu/i386", "/lib32/i686", "/lib32/i586", "/lib32/i486", "/lib32/i386", "/lib/i686", "/lib/i586", "/lib/i486", "/lib/i386"}},
		{"arm/v7", "/x/$LIB", []string{"/x/lib/arm-linux-gnueabihf", "/x/lib"}},
		{"arm/v7", "/x/$PLATFORM", []string{"/x/v7l", "/x/v8l", "/x/v6l"}},
		{"ppc64le", "/p/$PLATFORM", []string{"/p/power8", "/p/power9", "/p/power10", "/p/power11"}},
		{"s390x", "/$LIB", []string{"/lib/s390x-linux-gnu", "/lib64", "/lib"}},
		{"riscv64", "/$LIB", []string{"/lib/riscv64-linux-gnu", "/lp64d", "/lib64", "/lib"}},
		{"riscv64", "/opt/$PLATFORM/lib", nil},
		{"arm64", "$ORIGINAL/$LIBS/${LIB", []string{"$ORIGINAL/$LIBS/${LIB"}},
		{"arm64", "/a$$ORIGIN", []string{"/a$/o"}},
		{"arm64", "/plain", []string{"/plain"}},
	} {
		a := archOfPlatform(tc.arch, "")
		if tc.arch == "arm/v7" {
			a = archOfPlatform("arm", "v7")
		}
		if got := a.expand(tc.in, "/o"); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q expands to %q, want %q", tc.arch, tc.in, got, tc.want)
		}
	}
	if got := archOfPlatform("arm64", "").expand("$ORIGIN/lib", ""); got != nil {
		t.Errorf("$ORIGIN with no origin: %q", got)
	}
}

// The cache's byte order is the one its header records, or, for a cache that records none (before glibc
// 2.33), the one its entry count makes sense in; the old format before it is skipped, 8- or 4-aligned.
// Each entry keeps its flags and hwcap.
func TestParseLDCacheByteOrder(t *testing.T) {
	entries := []cacheEntry{
		{"libc.so.6", "/lib/s390x-linux-gnu/libc.so.6", 0x403, 0},
		{"libz.so.1", "/usr/lib/glibc-hwcaps/z15/libz.so.1", 0x403, hwcapExtension | 3},
		{"libz.so.1", "/usr/lib/libz.so.1", 0x403, 0},
	}
	want := map[string][]LDCacheEntry{
		"libc.so.6": {{"/lib/s390x-linux-gnu/libc.so.6", 0x403, 0}},
		"libz.so.1": {{"/usr/lib/glibc-hwcaps/z15/libz.so.1", 0x403, hwcapExtension | 3}, {"/usr/lib/libz.so.1", 0x403, 0}},
	}
	for _, tc := range []struct {
		name  string
		cache []byte
	}{
		{"big-endian", ldCacheOf(binary.BigEndian, 3, entries)},
		{"little-endian", ldCacheOf(binary.LittleEndian, 2, entries)},
		{"big-endian, unrecorded", ldCacheOf(binary.BigEndian, 0, entries)},
		{"little-endian, unrecorded", ldCacheOf(binary.LittleEndian, 0, entries)},
		{"big-endian after the old format", withOldFormat(binary.BigEndian, 3, 8, ldCacheOf(binary.BigEndian, 3, entries))},
		{"i386, 4-aligned after the old format", withOldFormat(binary.LittleEndian, 1, 4, ldCacheOf(binary.LittleEndian, 2, entries))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLDCache(tc.cache)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("parsed %v\nwant %v", got, want)
			}
		})
	}
	if _, err := ParseLDCache(ldCacheOf(binary.LittleEndian, 1, entries)); err == nil {
		t.Error("a cache ldconfig marked invalid was parsed")
	}
}

// archOf tells the architectures apart by the ELF header alone, and gives a machine it does not know the
// generic directories.
func TestArchOf(t *testing.T) {
	for _, a := range testArches {
		h, err := readELFHeader(bytes.NewReader([]byte(a.lib())))
		if err != nil {
			t.Fatal(err)
		}
		if got := archOf(h, nil); got.name != a.name || got.triplet != a.triplet {
			t.Errorf("%s: archOf says %s (%s)", a.name, got.name, got.triplet)
		}
	}
	h := &elfHeader{class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_LOONGARCH}
	if a := archOf(h, nil); a.triplet != "" || !slices.Equal(a.dirs, []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) ||
		!a.accepts(h) || a.accepts(&elfHeader{class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_X86_64}) {
		t.Errorf("loongarch64: %+v", a)
	}
}
