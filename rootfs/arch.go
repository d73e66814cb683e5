package rootfs

import (
	"debug/elf"
	"slices"
	"strings"
)

// The closure resolves a library as the ld.so of the needing file's architecture would: what that is comes
// from the needing file's own ELF header (class, byte order, machine and the ABI bits of e_flags), never from
// the host. The facts below are glibc's (sysdeps/*/dl-machine.h elf_machine_matches_host,
// sysdeps/unix/sysv/linux/arm/ldsodefs.h VALID_FLOAT_ABI, sysdeps/**/dl-cache.h _dl_cache_check_flags, the
// ldconfig flags of sysdeps/generic/ldconfig.h and sysdeps/**/readelflib.c, slibdir in
// sysdeps/unix/sysv/linux/**/configure) and Debian's (the multiarch directories its glibc searches, and its
// $LIB: `ld.so --list-diagnostics` says dl_dst_lib="lib/x86_64-linux-gnu" on bookworm amd64); AT_PLATFORM is
// the kernel's (ELF_PLATFORM in arch/*/include/asm/elf.h).

// ld.so.cache entry flags (glibc's sysdeps/generic/ldconfig.h): the low byte the kind, the next the ABI.
const (
	flagELF           = 0x0001
	flagELFLibc6      = 0x0003
	flagX8664Lib64    = 0x0300
	flagS390Lib64     = 0x0400
	flagPowerPCLib64  = 0x0500
	flagARMLibHF      = 0x0900
	flagAArch64Lib64  = 0x0a00
	flagARMLibSF      = 0x0b00
	flagRISCVFloatSft = 0x0f00
	flagRISCVFloatDbl = 0x1000
)

// ELF e_flags bits that tell an ABI apart (glibc's elf/elf.h).
const (
	efARMEABIMask     = 0xff000000
	efARMEABIVer5     = 0x05000000
	efARMABIFloatSoft = 0x200
	efARMABIFloatHard = 0x400
	efRISCVFloatABI   = 0x0006
	efRISCVFloatSoft  = 0x0000
	efRISCVFloatDbl   = 0x0004
	efPPC64ABI        = 0x0003
	emS390Old         = 0xa390 // the S/390 machine number before EM_S390 was assigned; ld.so takes both
)

// arch is one architecture's ABI as its glibc ld.so sees it.
type arch struct {
	// name is the OCI platform (architecture, and "/variant" where there is one).
	name    string
	class   elf.Class
	data    elf.Data
	machine elf.Machine
	// abi is the ABI bits of e_flags its ld.so requires of a library (see accepts).
	abi uint32
	// triplet is the Debian multiarch triplet.
	triplet string
	// dirs are where ld.so looks last: Debian's multiarch directories, then glibc's own (slibdir and libdir,
	// /lib64 and /usr/lib64 where upstream glibc puts 64-bit libraries), then /lib and /usr/lib (where other
	// distributions put them). A directory that holds another ABI's libraries costs nothing: a candidate is
	// taken only when accepts says so.
	dirs []string
	// lib are what $LIB may expand to (DL_DST_LIB: Debian's, then upstream glibc's notdir(slibdir), then
	// "lib"); platforms what $PLATFORM may (AT_PLATFORM, or what glibc puts in its place). Both depend on
	// what the closure cannot see (which glibc build, which CPU): the closure tries every one. No platforms:
	// the kernel gives no AT_PLATFORM, and ld.so drops a path that names $PLATFORM.
	lib, platforms []string
	// hwcaps are the glibc-hwcaps subdirectories its ld.so tries in each directory it searches, before the
	// directory itself, those the CPU supports (sysdeps/**/dl-hwcaps-subdirs.c, glibc 2.33 on).
	hwcaps []string
	// cacheFlags are the ld.so.cache entry flags its ld.so takes (_dl_cache_check_flags); nil takes any.
	cacheFlags []int32
}

// multiarch is an architecture's directories as Debian's glibc and upstream's search them: lib64 is
// upstream glibc's slibdir ("/lib64", "/lib64/lp64d", ...), "" for the architectures that keep lib.
func multiarch(triplet string, lib64 ...string) []string {
	dirs := []string{"/lib/" + triplet, "/usr/lib/" + triplet}
	for _, d := range lib64 {
		dirs = append(dirs, d, "/usr"+d)
	}
	return append(dirs, "/lib", "/usr/lib")
}

// arches are the architectures the closure knows. Where AT_PLATFORM depends on the CPU, every value a kernel
// (or glibc, on x86) gives is listed.
var arches = []*arch{
	{name: "amd64", class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_X86_64, triplet: "x86_64-linux-gnu",
		dirs: multiarch("x86_64-linux-gnu", "/lib64"), lib: []string{"lib/x86_64-linux-gnu", "lib64", "lib"},
		// The kernel's is "x86_64"; glibc replaces it with "haswell" or "xeon_phi" on Intel CPUs that have
		// their features (sysdeps/x86/cpu-features.c).
		platforms:  []string{"x86_64", "haswell", "xeon_phi"},
		hwcaps:     []string{"x86-64-v4", "x86-64-v3", "x86-64-v2"},
		cacheFlags: []int32{flagX8664Lib64 | flagELFLibc6}},
	{name: "386", class: elf.ELFCLASS32, data: elf.ELFDATA2LSB, machine: elf.EM_386, triplet: "i386-linux-gnu",
		// /lib32 and /usr/lib32: Debian's libc6-i386, the i386 glibc of an amd64 system.
		dirs: multiarch("i386-linux-gnu", "/lib32"), lib: []string{"lib/i386-linux-gnu", "lib32", "lib"},
		// glibc sets "i686" or "i586" itself; an i386 kernel's is the CPU's (uname -m).
		platforms:  []string{"i686", "i586", "i486", "i386"},
		cacheFlags: []int32{flagELFLibc6, flagELF}},
	{name: "arm64", class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_AARCH64, triplet: "aarch64-linux-gnu",
		dirs: multiarch("aarch64-linux-gnu", "/lib64"), lib: []string{"lib/aarch64-linux-gnu", "lib64", "lib"},
		platforms: []string{"aarch64"}, cacheFlags: []int32{flagAArch64Lib64 | flagELFLibc6}},
	// armhf: EABI 5, hard-float. Its ld.so takes a library not marked soft-float, and a cache entry marked
	// hard-float or not marked (ldconfig cannot tell an unmarked object's ABI).
	{name: "arm/v7", class: elf.ELFCLASS32, data: elf.ELFDATA2LSB, machine: elf.EM_ARM, abi: efARMABIFloatHard, triplet: "arm-linux-gnueabihf",
		dirs: multiarch("arm-linux-gnueabihf"), lib: []string{"lib/arm-linux-gnueabihf", "lib"},
		// "v7l" on an ARMv7 kernel, "v8l" (COMPAT_ELF_PLATFORM) on arm64, "v6l" on a Raspberry Pi 1.
		platforms:  []string{"v7l", "v8l", "v6l"},
		cacheFlags: []int32{flagARMLibHF | flagELFLibc6, flagELFLibc6}},
	// armel: EABI 5, soft-float (Debian's is ARMv5TE).
	{name: "arm/v5", class: elf.ELFCLASS32, data: elf.ELFDATA2LSB, machine: elf.EM_ARM, abi: efARMABIFloatSoft, triplet: "arm-linux-gnueabi",
		dirs: multiarch("arm-linux-gnueabi"), lib: []string{"lib/arm-linux-gnueabi", "lib"},
		platforms:  []string{"v5l", "v6l", "v7l", "v8l"},
		cacheFlags: []int32{flagARMLibSF | flagELFLibc6, flagELFLibc6}},
	// ppc64le: the ELFv2 ABI. AT_PLATFORM is the CPU's generation (Debian's baseline is POWER8).
	{name: "ppc64le", class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_PPC64, abi: 2, triplet: "powerpc64le-linux-gnu",
		dirs: multiarch("powerpc64le-linux-gnu", "/lib64"), lib: []string{"lib/powerpc64le-linux-gnu", "lib64", "lib"},
		platforms:  []string{"power8", "power9", "power10", "power11"},
		hwcaps:     []string{"power10", "power9"},
		cacheFlags: []int32{flagPowerPCLib64 | flagELFLibc6}},
	// ppc64 (big-endian): the ELFv1 ABI; the same cache flags as ppc64le, told apart by byte order.
	{name: "ppc64", class: elf.ELFCLASS64, data: elf.ELFDATA2MSB, machine: elf.EM_PPC64, abi: 1, triplet: "powerpc64-linux-gnu",
		dirs: multiarch("powerpc64-linux-gnu", "/lib64"), lib: []string{"lib/powerpc64-linux-gnu", "lib64", "lib"},
		platforms:  []string{"power7", "power8", "power9", "power10", "power11"},
		cacheFlags: []int32{flagPowerPCLib64 | flagELFLibc6}},
	// s390x: AT_PLATFORM is the machine's generation (the kernel's setup_elf_platform; "z10" by default).
	{name: "s390x", class: elf.ELFCLASS64, data: elf.ELFDATA2MSB, machine: elf.EM_S390, triplet: "s390x-linux-gnu",
		dirs: multiarch("s390x-linux-gnu", "/lib64"), lib: []string{"lib/s390x-linux-gnu", "lib64", "lib"},
		platforms:  []string{"z10", "z196", "zEC12", "z13", "z14", "z15", "z16", "z17", "z900", "z990", "z9-109"},
		hwcaps:     []string{"z17", "z16", "z15", "z14", "z13"},
		cacheFlags: []int32{flagS390Lib64 | flagELFLibc6}},
	// riscv64 (lp64d, the double-float ABI every distribution uses). The kernel gives no AT_PLATFORM. Its
	// ld.so takes only a library of the same float ABI. Upstream's slibdir is /lib64/lp64d, so its $LIB is
	// "lp64d"; Fedora's is /lib64.
	{name: "riscv64", class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_RISCV, abi: efRISCVFloatDbl, triplet: "riscv64-linux-gnu",
		dirs: multiarch("riscv64-linux-gnu", "/lib64/lp64d", "/lib64"), lib: []string{"lib/riscv64-linux-gnu", "lp64d", "lib64", "lib"},
		cacheFlags: []int32{flagRISCVFloatDbl | flagELFLibc6}},
	// riscv64 lp64, soft-float: no Debian port; upstream's directories. (Its name is this table's: OCI has
	// no variant for it.)
	{name: "riscv64/lp64", class: elf.ELFCLASS64, data: elf.ELFDATA2LSB, machine: elf.EM_RISCV, abi: efRISCVFloatSoft,
		dirs: []string{"/lib64/lp64", "/usr/lib64/lp64", "/lib", "/usr/lib"}, lib: []string{"lp64", "lib"},
		cacheFlags: []int32{flagRISCVFloatSft | flagELFLibc6}},
}

// archOf is the architecture of the ELF file whose header is h. fallback (the image config's, may be nil)
// decides an ARM file whose e_flags say neither hard- nor soft-float. An architecture the table does not
// know gets one that only asks for the same class, byte order and machine, takes any cache entry, and
// searches the generic directories.
func archOf(h *elfHeader, fallback *arch) *arch {
	abi := uint32(0)
	switch h.machine {
	case elf.EM_ARM:
		switch eabi5 := h.flags&efARMEABIMask == efARMEABIVer5; {
		case eabi5 && h.flags&efARMABIFloatHard != 0:
			abi = efARMABIFloatHard
		case eabi5 && h.flags&efARMABIFloatSoft != 0:
			abi = efARMABIFloatSoft
		default:
			abi = efARMABIFloatHard // Debian armhf, the ARM port of most images
			if fallback != nil && fallback.machine == elf.EM_ARM {
				abi = fallback.abi
			}
		}
	case elf.EM_RISCV:
		abi = h.flags & efRISCVFloatABI
	case elf.EM_PPC64:
		// Linux's big-endian ppc64 is ELFv1, ppc64le ELFv2: the ABI goes by byte order (and a library whose
		// e_flags say neither is taken by either ld.so, see accepts).
		abi = 2
		if h.data == elf.ELFDATA2MSB {
			abi = 1
		}
	case emS390Old:
		h = &elfHeader{class: h.class, data: h.data, machine: elf.EM_S390}
	}
	for _, a := range arches {
		if a.class == h.class && a.data == h.data && a.machine == h.machine && a.abi == abi {
			return a
		}
	}
	a := &arch{name: strings.ToLower(strings.TrimPrefix(h.machine.String(), "EM_")), class: h.class, data: h.data, machine: h.machine, abi: abi,
		dirs: []string{"/lib", "/usr/lib"}, lib: []string{"lib"}}
	if h.class == elf.ELFCLASS64 {
		a.dirs = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
		a.lib = []string{"lib64", "lib"}
	}
	return a
}

// archOfPlatform is the architecture an image config's platform names (GOARCH spelling, as OCI's), nil if
// unknown. arm without a variant, or v6 to v8, is armhf; v5 is armel (Debian's arm32v5 images).
func archOfPlatform(architecture, variant string) *arch {
	name := architecture
	if architecture == "arm" {
		name = "arm/v7"
		if variant == "v5" {
			name = "arm/v5"
		}
	}
	for _, a := range arches {
		if a.name == name {
			return a
		}
	}
	return nil
}

// accepts reports whether a's ld.so loads the ELF file whose header is h: the same class, byte order and
// machine, and an ABI it can run (elf_machine_matches_host and VALID_FLOAT_ABI).
func (a *arch) accepts(h *elfHeader) bool {
	machine := h.machine
	if machine == emS390Old {
		machine = elf.EM_S390
	}
	if h.class != a.class || h.data != a.data || machine != a.machine {
		return false
	}
	switch a.machine {
	case elf.EM_ARM:
		if h.flags&efARMEABIMask != efARMEABIVer5 {
			return true
		}
		if a.abi == efARMABIFloatHard {
			return h.flags&efARMABIFloatSoft == 0
		}
		return h.flags&efARMABIFloatHard == 0
	case elf.EM_RISCV:
		return h.flags&efRISCVFloatABI == a.abi
	case elf.EM_PPC64:
		return h.flags&efPPC64ABI == 0 || h.flags&efPPC64ABI == a.abi
	}
	return true
}

// cacheTakes reports whether a's ld.so takes an ld.so.cache entry with these flags.
func (a *arch) cacheTakes(flags int32) bool {
	return a.cacheFlags == nil || slices.Contains(a.cacheFlags, flags)
}

// expand is the directories a DT_RPATH or DT_RUNPATH element (or an LD_LIBRARY_PATH one) may stand for on a:
// $ORIGIN (or ${ORIGIN}) is origin, $LIB and $PLATFORM each of their values. ld.so replaces a token only when
// the name ends there ("$LIBX" is no $LIB), and drops an element whose token has no value; so does expand.
// An empty origin drops an element that names $ORIGIN.
func (a *arch) expand(d, origin string) []string {
	out := []string{""}
	for len(d) > 0 {
		i := strings.IndexByte(d, '$')
		if i < 0 {
			for j := range out {
				out[j] += d
			}
			break
		}
		for j := range out {
			out[j] += d[:i]
		}
		d = d[i+1:]
		name, rest, ok := dst(d)
		if !ok {
			for j := range out {
				out[j] += "$"
			}
			continue
		}
		var values []string
		switch name {
		case "ORIGIN":
			if origin != "" {
				values = []string{origin}
			}
		case "LIB":
			values = a.lib
		case "PLATFORM":
			values = a.platforms
		}
		if len(values) == 0 {
			return nil
		}
		var next []string
		for _, o := range out {
			for _, v := range values {
				next = append(next, o+v)
			}
		}
		out, d = next, rest
	}
	return out
}

// dst reads the dynamic string token at the start of s (after its '$'): ORIGIN, LIB or PLATFORM, bare or in
// braces, as ld.so's is_dst does.
func dst(s string) (name, rest string, ok bool) {
	braces := strings.HasPrefix(s, "{")
	if braces {
		s = s[1:]
	}
	for _, n := range []string{"ORIGIN", "LIB", "PLATFORM"} {
		if !strings.HasPrefix(s, n) {
			continue
		}
		r := s[len(n):]
		if braces {
			if strings.HasPrefix(r, "}") {
				return n, r[1:], true
			}
			return "", "", false
		}
		if r != "" && (r[0] == '_' || 'a' <= r[0] && r[0] <= 'z' || 'A' <= r[0] && r[0] <= 'Z' || '0' <= r[0] && r[0] <= '9') {
			return "", "", false
		}
		return n, r, true
	}
	return "", "", false
}
