package sensor

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// Ops the sensor derives once the app has stopped, from the filesystem the app saw (the sensor runs in the
// sandbox's mount namespace), for the paths the tracer recorded by the names the app used:
//
//   - "link": a symlink met while resolving a recorded name (each component, chains followed);
//   - "resolved": the file a recorded name led to through symlinks;
//   - "interp": the ELF interpreter (PT_INTERP) or the #! interpreter of an executed file, which the kernel
//     opens itself, out of the tracer's sight;
//   - "missing": a recorded name that leads nowhere at the end of the run (a failed lookup, or a file the
//     app removed).
//
// This gives the closure what fanotify would (resolved targets, the interpreter the kernel opens), and it
// works rootless, where fanotify does not. Paths under /proc, /sys and /dev are kernel files, not resolved.
func complete(rec *Record) {
	names := make([]string, 0, len(rec.Files))
	for p := range rec.Files {
		names = append(names, p)
	}
	r := &resolver{rec: rec}
	for _, p := range names {
		if kernelPath(p) {
			continue
		}
		if slices.Contains(rec.Files[p], "exec") {
			r.interpreters(p, 0)
		}
		r.resolve(p)
	}
}

func kernelPath(p string) bool {
	for _, dir := range []string{"/proc", "/sys", "/dev"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

type resolver struct {
	rec *Record
	// done holds the names already resolved: each symlink chain is walked once.
	done map[string]bool
}

func (r *resolver) add(p, op string) {
	ops, ok := r.rec.Files[p]
	if slices.Contains(ops, op) {
		return
	}
	if !ok {
		// The derived paths get a quarter more room than the traced ones; past that the record is full.
		if len(r.rec.Files) >= MaxFiles+MaxFiles/4 || r.rec.pathBytes+len(p) > MaxPathBytes+MaxPathBytes/4 {
			r.rec.Dropped++
			return
		}
		r.rec.pathBytes += len(p)
	}
	r.rec.Files[p] = insertSorted(ops, op)
}

// resolve walks p component by component, recording each symlink met and where p leads.
func (r *resolver) resolve(p string) {
	if r.done == nil {
		r.done = map[string]bool{}
	}
	if r.done[p] {
		return
	}
	r.done[p] = true
	final, ok, linked := Resolve("/", p, func(link string) { r.add(link, "link") })
	switch {
	case !ok:
		r.add(p, "missing")
	case linked && final != p:
		r.add(final, "resolved")
	}
}

// Resolve follows p through the symlinks of the filesystem rooted at root ("/" in the sandbox), calling link
// for each symlink met. It returns where p leads, whether that exists, and whether any symlink was followed;
// paths are as seen from root. Symlinks resolve inside root ("..", absolute targets), as the kernel does for
// a process whose root it is; more than 40 of them make p missing (ELOOP).
func Resolve(root, p string, link func(string)) (final string, exists, linked bool) {
	rest := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		fi, err := os.Lstat(path.Join(root, next))
		if err != nil {
			return path.Join(append([]string{next}, rest...)...), false, linked
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return path.Join(append([]string{next}, rest...)...), false, linked
		}
		target, err := os.Readlink(path.Join(root, next))
		if err != nil {
			return path.Join(append([]string{next}, rest...)...), false, linked
		}
		linked = true
		if link != nil {
			link(next)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, true, linked
}

// interpreters records the interpreter the kernel loads to run the executable p: PT_INTERP for ELF, the
// #! line for scripts (which may name a script in turn: the kernel allows 4 levels).
func (r *resolver) interpreters(p string, depth int) {
	if depth > 4 {
		return
	}
	final, ok, _ := Resolve("/", p, nil)
	if !ok {
		return
	}
	interp := Interpreter(final)
	if interp == "" {
		return
	}
	r.add(interp, "interp")
	r.resolve(interp)
	r.interpreters(interp, depth+1)
}

// Interpreter returns the program the kernel runs to execute the file at p: its ELF PT_INTERP, or the
// interpreter named on its #! line; "" when it has none, cannot be read or is not a regular file. What the
// app runs is untrusted: the file is opened without blocking (a FIFO) and checked to be regular before any
// read, and only the ELF header, the program headers (at most 64 KiB, the kernel's own bound) and the
// interpreter's name (at most 4096 bytes) are read.
func Interpreter(p string) string {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) {
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			return ""
		}
		return path.Clean(fields[0])
	}
	return elfInterp(f, head)
}

// elfInterp reads PT_INTERP from an ELF file whose first bytes are head.
func elfInterp(f *os.File, head []byte) string {
	if len(head) < 64 || !bytes.HasPrefix(head, []byte(elf.ELFMAG)) {
		return ""
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(head[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	var phoff, entsize, num uint64
	is64 := elf.Class(head[elf.EI_CLASS]) == elf.ELFCLASS64
	if is64 {
		phoff, entsize, num = bo.Uint64(head[32:40]), uint64(bo.Uint16(head[54:56])), uint64(bo.Uint16(head[56:58]))
	} else {
		phoff, entsize, num = uint64(bo.Uint32(head[28:32])), uint64(bo.Uint16(head[42:44])), uint64(bo.Uint16(head[44:46]))
	}
	if (is64 && entsize < 56) || (!is64 && entsize < 32) || entsize*num > 64<<10 {
		return ""
	}
	phdrs := make([]byte, entsize*num)
	if _, err := f.ReadAt(phdrs, int64(phoff)); err != nil {
		return ""
	}
	for i := uint64(0); i < num; i++ {
		ph := phdrs[i*entsize : (i+1)*entsize]
		if elf.ProgType(bo.Uint32(ph[0:4])) != elf.PT_INTERP {
			continue
		}
		var off, size uint64
		if is64 {
			off, size = bo.Uint64(ph[8:16]), bo.Uint64(ph[32:40])
		} else {
			off, size = uint64(bo.Uint32(ph[4:8])), uint64(bo.Uint32(ph[16:20]))
		}
		if size == 0 || size > 4096 || off > 1<<40 {
			return ""
		}
		b := make([]byte, size)
		if _, err := f.ReadAt(b, int64(off)); err != nil {
			return ""
		}
		return path.Clean(string(bytes.TrimRight(b, "\x00")))
	}
	return ""
}

func insertSorted(ops []string, op string) []string {
	out := append(ops[:len(ops):len(ops)], op)
	for i := len(out) - 1; i > 0 && out[i] < out[i-1]; i-- {
		out[i], out[i-1] = out[i-1], out[i]
	}
	return out
}
