package sensor

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "usr/bin", "etc/alternatives", "opt/app"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libc.so.6"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "usr/bin/python3.11"), nil, 0o755)
	for link, target := range map[string]string{
		"lib":                     "usr/lib",
		"usr/bin/python3":         "python3.11",
		"usr/bin/python":          "/etc/alternatives/python",
		"etc/alternatives/python": "../../usr/bin/python3",
		"opt/app/escape":          "../../../../usr/bin/python3.11",
		"loop1":                   "loop2",
		"loop2":                   "loop1",
		"dangling":                "/nowhere",
	} {
		os.Symlink(target, filepath.Join(root, link))
	}
	cases := []struct {
		p, final string
		exists   bool
		links    []string
	}{
		{"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", true, []string{"/lib"}},
		{"/usr/bin/python", "/usr/bin/python3.11", true, []string{"/usr/bin/python", "/etc/alternatives/python", "/usr/bin/python3"}},
		{"/opt/app/escape", "/usr/bin/python3.11", true, []string{"/opt/app/escape"}}, // ".." stops at the root
		{"/usr/bin/python3.11", "/usr/bin/python3.11", true, nil},
		{"/lib/missing.so", "/usr/lib/missing.so", false, []string{"/lib"}},
		{"/dangling/x", "/nowhere/x", false, []string{"/dangling"}},
		{"/loop1", "", false, nil},
	}
	for _, c := range cases {
		var links []string
		final, exists, linked := Resolve(root, c.p, func(l string) { links = append(links, l) })
		if c.p == "/loop1" {
			if exists || len(links) < 40 {
				t.Errorf("loop: exists %v after %d links", exists, len(links))
			}
			continue
		}
		if final != c.final || exists != c.exists || linked != (len(c.links) > 0) || !slices.Equal(links, c.links) {
			t.Errorf("Resolve(%s) = %s %v %v %v, want %s %v %v", c.p, final, exists, linked, links, c.final, c.exists, c.links)
		}
	}
}

func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s")
	os.WriteFile(script, []byte("#!/usr/bin/env  python3 -u\nprint(1)\n"), 0o755)
	if got := Interpreter(script); got != "/usr/bin/env" {
		t.Errorf("script: %q", got)
	}
	// This test binary is an ELF executable: its PT_INTERP (when dynamic) is the host's loader.
	self, _ := os.Executable()
	got := Interpreter(self)
	if got != "" && !filepath.IsAbs(got) {
		t.Errorf("ELF: %q", got)
	}
	if got := Interpreter("/bin/sh"); got == "" {
		t.Errorf("/bin/sh has no ELF interpreter")
	}
	os.WriteFile(filepath.Join(dir, "data"), []byte("\x7fELFgarbage"), 0o644)
	if got := Interpreter(filepath.Join(dir, "data")); got != "" {
		t.Errorf("broken ELF: %q", got)
	}
}

// An executed file the app made hostile: a FIFO (a read would block the sensor, PID 1), a device, an ELF
// header claiming 65535 program headers of 64 KiB each or a 1 GiB interpreter name.
func TestInterpreterHostile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	elfWith := func(phentsize, phnum uint16, interpSize uint64) string {
		b := make([]byte, 64+56)
		copy(b, "\x7fELF\x02\x01\x01")
		binary.LittleEndian.PutUint64(b[32:], 64) // e_phoff
		binary.LittleEndian.PutUint16(b[54:], phentsize)
		binary.LittleEndian.PutUint16(b[56:], phnum)
		ph := b[64:]
		binary.LittleEndian.PutUint32(ph[0:], 3) // PT_INTERP
		binary.LittleEndian.PutUint64(ph[8:], 0)
		binary.LittleEndian.PutUint64(ph[32:], interpSize)
		p := filepath.Join(dir, fmt.Sprintf("elf-%d-%d-%d", phentsize, phnum, interpSize))
		os.WriteFile(p, b, 0o755)
		return p
	}
	done := make(chan []string)
	go func() {
		done <- []string{Interpreter(fifo), Interpreter("/dev/zero"), Interpreter(elfWith(65535, 65535, 8)), Interpreter(elfWith(56, 1, 1<<30))}
	}()
	select {
	case got := <-done:
		for i, g := range got {
			if g != "" {
				t.Errorf("case %d: %q", i, g)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Interpreter blocked on a hostile file")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	Interpreter(elfWith(65535, 65535, 8))
	Interpreter(elfWith(56, 1, 1<<30))
	runtime.ReadMemStats(&ms)
	if grown := ms.TotalAlloc - before; grown > 1<<20 {
		t.Errorf("hostile ELF headers made the sensor allocate %d bytes", grown)
	}
}
