package runner

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/slimoci/slimoci/sensor"
	"golang.org/x/sys/unix"
)

// Foreign platforms run under emulation: the kernel hands an ELF file of another machine to the binfmt_misc
// handler whose magic matches its header, qemu-user on Debian. Registered with the fix-binary (F) flag, the
// handler's interpreter is opened once, at registration, in the host's mount namespace: execs in the sandbox
// use that open file and nothing of the host's enters the sandbox. Without F the kernel would look the
// interpreter up by path in the sandbox's root, where the image has none.

// BinfmtMisc is where binfmt_misc is mounted.
const BinfmtMisc = "/proc/sys/fs/binfmt_misc"

// Emulator is the binfmt_misc handler that runs a foreign platform's programs.
type Emulator struct {
	// Platform is the platform emulated ("linux/arm64"), Machine its ELF machine as uname names it
	// ("aarch64").
	Platform string `json:"platform"`
	Machine  string `json:"machine"`
	// Handler is the binfmt_misc entry ("qemu-aarch64"); Interpreter its program, a host path
	// ("/usr/libexec/qemu-binfmt/aarch64-binfmt-P"), and Flags its flags ("PF").
	Handler     string `json:"handler"`
	Interpreter string `json:"interpreter"`
	Flags       string `json:"flags"`
}

// sensorEmulation is what the sensor is told of e (nil for a native run): the guest's machine, the
// interpreter's identity (the file binfmt_misc opened at registration, as its host path shows it now) and
// whether the guest's argv[0] is preserved.
func (e *Emulator) sensorEmulation() *sensor.Emulation {
	if e == nil {
		return nil
	}
	se := &sensor.Emulation{Machine: e.Machine, PreserveArgv0: strings.Contains(e.Flags, "P")}
	var st unix.Stat_t
	if unix.Stat(e.Interpreter, &st) == nil {
		se.Dev, se.Ino = st.Dev, st.Ino
	}
	return se
}

// EmulatorError says why a platform cannot run here, and how to make it run. It is ErrNoEmulator.
type EmulatorError struct {
	Platform string
	// Problem is what is missing; Fix the command or package that supplies it.
	Problem, Fix string
}

func (e *EmulatorError) Error() string {
	return e.Platform + " needs an emulator: " + e.Problem + "; " + e.Fix
}

func (e *EmulatorError) Is(target error) bool { return target == ErrNoEmulator }

// debianFix is how a Debian host gets qemu-user handlers with F.
const debianFix = "on Debian: apt-get install qemu-user-static binfmt-support"

// elfMachine is what a platform's executables say in their ELF header.
type elfMachine struct {
	name    string // as uname -m and qemu name it
	class   elf.Class
	data    elf.Data
	machine elf.Machine
}

// elfMachines are the Linux architectures slimoci knows, by OCI (GOARCH) name.
var elfMachines = map[string]elfMachine{
	"amd64":   {"x86_64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64},
	"386":     {"i386", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386},
	"arm64":   {"aarch64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64},
	"arm":     {"arm", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM},
	"ppc64le": {"ppc64le", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_PPC64},
	"s390x":   {"s390x", elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_S390},
	"riscv64": {"riscv64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_RISCV},
}

// variants are the platform variants each architecture may carry (OCI image-index spec); "" is always one.
var variants = map[string][]string{
	"amd64": {"v1", "v2", "v3", "v4"},
	"arm64": {"v8"},
	"arm":   {"v5", "v6", "v7"},
}

// header is the start of an executable of m of the given type (ET_EXEC or ET_DYN): e_ident, e_type,
// e_machine, e_version, as a binfmt_misc magic is matched against (qemu's cover the first 20 bytes).
func (m elfMachine) header(typ elf.Type) []byte {
	h := make([]byte, 64)
	copy(h, elf.ELFMAG)
	h[elf.EI_CLASS], h[elf.EI_DATA], h[elf.EI_VERSION] = byte(m.class), byte(m.data), byte(elf.EV_CURRENT)
	var bo binary.ByteOrder = binary.LittleEndian
	if m.data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	bo.PutUint16(h[16:], uint16(typ))
	bo.PutUint16(h[18:], uint16(m.machine))
	bo.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	return h
}

// CheckEmulation says how this host runs programs of platform p: nil when it runs them natively (an amd64
// host runs amd64 and 386; an arm64 host arm64, and arm when its CPU runs 32-bit code), the binfmt_misc
// handler that emulates them otherwise. It fails with an *EmulatorError (ErrNoEmulator), one line naming the
// platform and the fix, when no enabled handler with the fix-binary flag matches p's ELF header, and with a
// plain error for a platform slimoci cannot run at all.
func CheckEmulation(p v1.Platform) (*Emulator, error) {
	return checkEmulation(BinfmtMisc, runtime.GOARCH, compat32, p)
}

// compat32 says whether an arm64 host runs 32-bit arm code: the kernel refuses the PER_LINUX32 personality
// when the CPU has no AArch32 at EL0 (or the kernel no compat support).
func compat32() bool {
	const perLinux32 = 0x0008 // PER_LINUX32, linux/personality.h
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if e != 0 {
		return false
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, perLinux32, 0, 0); e != 0 {
		return false
	}
	unix.RawSyscall(unix.SYS_PERSONALITY, old, 0, 0)
	return true
}

func checkEmulation(dir, hostArch string, compat32 func() bool, p v1.Platform) (*Emulator, error) {
	name := platformName(p)
	if p.OS != "linux" {
		return nil, fmt.Errorf("platform %s: slimoci runs linux images only", name)
	}
	m, ok := elfMachines[p.Architecture]
	if !ok {
		return nil, fmt.Errorf("platform %s: unknown architecture %q (known: %s)", name, p.Architecture, strings.Join(knownArchs(), ", "))
	}
	if p.Variant != "" && !slices.Contains(variants[p.Architecture], p.Variant) {
		return nil, fmt.Errorf("platform %s: unknown variant %q of %s", name, p.Variant, p.Architecture)
	}
	if native(hostArch, p.Architecture, compat32) {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "register")); err != nil {
		return nil, &EmulatorError{Platform: name, Problem: "binfmt_misc is not mounted at " + dir, Fix: "mount -t binfmt_misc binfmt_misc " + dir + "; " + debianFix}
	}
	handlers, err := readBinfmt(dir)
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", name, err)
	}
	if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil && strings.TrimSpace(string(st)) == "disabled" {
		return nil, &EmulatorError{Platform: name, Problem: "binfmt_misc is disabled", Fix: "echo 1 > " + filepath.Join(dir, "status")}
	}
	// Every enabled handler that matches is a candidate, and the kernel takes the one registered last, which
	// the directory does not tell: each must have F.
	var enabled, disabled []binfmtHandler
	for _, h := range handlers {
		if !h.matches(m.header(elf.ET_EXEC)) && !h.matches(m.header(elf.ET_DYN)) {
			continue
		}
		if h.enabled {
			enabled = append(enabled, h)
		} else {
			disabled = append(disabled, h)
		}
	}
	what := m.name + " ELF files"
	switch {
	case len(enabled) == 0 && len(disabled) > 0:
		h := disabled[0]
		return nil, &EmulatorError{Platform: name, Problem: fmt.Sprintf("the binfmt_misc handler %s for %s is disabled", h.name, what),
			Fix: fmt.Sprintf("update-binfmts --enable %s (or echo 1 > %s)", h.name, filepath.Join(dir, h.name))}
	case len(enabled) == 0:
		return nil, &EmulatorError{Platform: name, Problem: "no binfmt_misc handler runs " + what, Fix: debianFix}
	}
	for _, h := range enabled {
		if !strings.Contains(h.flags, "F") {
			return nil, &EmulatorError{Platform: name,
				Problem: fmt.Sprintf("the binfmt_misc handler %s for %s lacks the fix-binary (F) flag, so its interpreter %s would have to be inside the image", h.name, what, h.interpreter),
				Fix:     fmt.Sprintf("%s (its handlers have F), or register it again with F: echo -1 > %s; echo '%s' > %s", debianFix, filepath.Join(dir, h.name), h.registerLine("F"), filepath.Join(dir, "register"))}
		}
		if dynamic(h.interpreter) {
			return nil, &EmulatorError{Platform: name,
				Problem: fmt.Sprintf("the binfmt_misc handler %s for %s runs %s, which is dynamically linked: its libraries would have to be inside the image", h.name, what, h.interpreter),
				Fix:     debianFix + " (static interpreters)"}
		}
	}
	h := enabled[0]
	return &Emulator{Platform: name, Machine: m.name, Handler: h.name, Interpreter: h.interpreter, Flags: h.flags}, nil
}

// native says whether a host of architecture host runs programs of arch without emulation.
func native(host, arch string, compat32 func() bool) bool {
	switch {
	case host == arch:
		return true
	case host == "amd64" && arch == "386":
		return true
	case host == "arm64" && arch == "arm":
		return compat32()
	}
	return false
}

// dynamic says whether the host program at p is an ELF file with an interpreter (PT_INTERP). A program
// that cannot be read (a handler registered from outside this mount namespace) is not known to be.
func dynamic(p string) bool {
	f, err := elf.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

func platformName(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func knownArchs() []string {
	var out []string
	for a := range elfMachines {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// binfmtHandler is one entry of binfmt_misc, as its file there reads.
type binfmtHandler struct {
	name        string
	enabled     bool
	interpreter string
	flags       string
	offset      int
	// magic and mask are set for a magic handler; an extension handler (E) has neither and never matches.
	magic, mask []byte
}

// maxBinfmtEntry bounds what is read of one entry (the kernel's are well under a page).
const maxBinfmtEntry = 64 << 10

// readBinfmt reads every handler registered in the binfmt_misc mounted at dir.
func readBinfmt(dir string) ([]binfmtHandler, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var out []binfmtHandler
	for _, e := range entries {
		if e.Name() == "register" || e.Name() == "status" || e.Type()&fs.ModeType != 0 {
			continue
		}
		b, err := readBounded(filepath.Join(dir, e.Name()), maxBinfmtEntry)
		if err != nil {
			continue // removed meanwhile
		}
		h, err := parseBinfmt(e.Name(), string(b))
		if err != nil {
			return nil, fmt.Errorf("reading binfmt_misc handler %s: %w", e.Name(), err)
		}
		out = append(out, h)
	}
	return out, nil
}

func readBounded(p string, n int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := f.Read(b)
	if err != nil {
		return nil, err
	}
	return b[:got], nil
}

// parseBinfmt reads a handler's entry: "enabled" or "disabled", then "interpreter PATH", "flags: FLAGS",
// and "offset N", "magic HEX", "mask HEX" (a magic handler) or "extension .EXT".
func parseBinfmt(name, s string) (binfmtHandler, error) {
	h := binfmtHandler{name: name}
	for i, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if i == 0 {
			switch line {
			case "enabled":
				h.enabled = true
			case "disabled":
			default:
				return h, fmt.Errorf("first line %q is neither enabled nor disabled", line)
			}
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		var err error
		switch key {
		case "interpreter":
			h.interpreter = val
		case "flags:":
			h.flags = val
		case "offset":
			h.offset, err = strconv.Atoi(val)
			if err == nil && (h.offset < 0 || h.offset > 128) {
				err = errors.New("out of range")
			}
		case "magic":
			h.magic, err = hex.DecodeString(val)
		case "mask":
			h.mask, err = hex.DecodeString(val)
		}
		if err != nil {
			return h, fmt.Errorf("%s %q: %w", key, val, err)
		}
	}
	if h.mask != nil && len(h.mask) != len(h.magic) {
		return h, fmt.Errorf("mask of %d bytes for a magic of %d", len(h.mask), len(h.magic))
	}
	return h, nil
}

// matches says whether the kernel would hand a file starting with head to h: the bytes at h.offset equal
// h.magic where h.mask has bits set (everywhere without a mask).
func (h binfmtHandler) matches(head []byte) bool {
	if len(h.magic) == 0 || h.offset+len(h.magic) > len(head) {
		return false
	}
	for i, b := range h.magic {
		mask := byte(0xff)
		if h.mask != nil {
			mask = h.mask[i]
		}
		if (head[h.offset+i]^b)&mask != 0 {
			return false
		}
	}
	return true
}

// registerLine is h's registration with flags added, as written to binfmt_misc's register file: every
// byte of the magic and mask escaped, so that none is taken for the separator.
func (h binfmtHandler) registerLine(add string) string {
	esc := func(b []byte) string {
		var s bytes.Buffer
		for _, c := range b {
			fmt.Fprintf(&s, `\x%02x`, c)
		}
		return s.String()
	}
	flags := h.flags
	for _, f := range add {
		if !strings.ContainsRune(flags, f) {
			flags += string(f)
		}
	}
	return fmt.Sprintf(":%s:M:%d:%s:%s:%s:%s", h.name, h.offset, esc(h.magic), esc(h.mask), h.interpreter, flags)
}
