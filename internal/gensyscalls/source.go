package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Files of the kernel tree the generator reads, by their path in it.
const (
	table64     = "arch/x86/entry/syscalls/syscall_64.tbl"
	table32     = "arch/x86/entry/syscalls/syscall_32.tbl"
	syscallsH   = "include/linux/syscalls.h"
	compatH     = "include/linux/compat.h"
	topMakefile = "Makefile"
	// The generic table, riscv's and arm64's: arm64's Makefile.syscalls names arch/arm64/tools/syscall_64.tbl,
	// a symbolic link to it in 6.12.
	tableGeneric = "scripts/syscall.tbl"
	tableARM     = "arch/arm/tools/syscall.tbl"
	tablePPC     = "arch/powerpc/kernel/syscalls/syscall.tbl"
	tableS390    = "arch/s390/kernel/syscalls/syscall.tbl"
)

// fixedFiles are the files every tree must have.
var fixedFiles = []string{table64, table32, tableGeneric, tableARM, tablePPC, tableS390, syscallsH, compatH, topMakefile}

// archDirs are the architectures (arch/DIR) whose own C files define syscalls the generator decodes the
// paths of: x86's for amd64 and i386, arm64's.
var archDirs = []string{"x86", "arm64"}

// kernelTree is what the generator needs of a kernel source tree: the syscall tables, the prototype headers,
// the top Makefile (for the version) and every C file that defines a syscall (SYSCALL_DEFINEn), by path.
type kernelTree struct {
	files map[string][]byte
}

// definesSyscall tells whether a C file may define a syscall (SYSCALL_DEFINEn, COMPAT_SYSCALL_DEFINEn,
// SYSCALL32_DEFINEn).
func definesSyscall(b []byte) bool {
	return bytes.Contains(b, []byte("SYSCALL_DEFINE")) || bytes.Contains(b, []byte("SYSCALL32_DEFINE"))
}

// wanted tells whether the file at rel (a path in the tree) is read: always for the fixed files, and for a C
// file that may define a syscall an x86 or arm64 kernel builds (any directory but other architectures' and
// the tree's tools, samples and documentation).
func wanted(rel string) (always, cFile bool) {
	if slices.Contains(fixedFiles, rel) {
		return true, false
	}
	if !strings.HasSuffix(rel, ".c") {
		return false, false
	}
	top, rest, _ := strings.Cut(rel, "/")
	switch top {
	case "arch":
		// arch/x86/um is user-mode Linux's, not the x86 kernel's.
		dir, _, _ := strings.Cut(rest, "/")
		return false, slices.Contains(archDirs, dir) && !strings.HasPrefix(rest, "x86/um/")
	case "tools", "samples", "Documentation", "scripts", "usr":
		return false, false
	}
	return false, true
}

// readKernel reads the tree at src: an unpacked directory, or a tarball (.tar.xz, as Debian's linux-source
// packages ship it, or .tar) whose members sit under one top directory.
func readKernel(ctx context.Context, src string) (*kernelTree, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("reading kernel source: %w", err)
	}
	var t *kernelTree
	if fi.IsDir() {
		t, err = readDir(src)
	} else {
		t, err = readTarball(ctx, src)
	}
	if err != nil {
		return nil, fmt.Errorf("reading kernel source %s: %w", src, err)
	}
	for _, f := range fixedFiles {
		if _, ok := t.files[f]; !ok {
			return nil, fmt.Errorf("reading kernel source %s: no %s in it", src, f)
		}
	}
	return t, nil
}

func readDir(dir string) (*kernelTree, error) {
	t := &kernelTree{files: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if top, _, _ := strings.Cut(rel, "/"); slices.Contains([]string{".git", "tools", "samples", "Documentation", "usr"}, top) {
				return filepath.SkipDir
			}
			return nil
		}
		always, cFile := wanted(rel)
		if !always && !cFile {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if always || definesSyscall(b) {
			t.files[rel] = b
		}
		return nil
	})
	return t, err
}

// readTarball reads the tarball through the xz command rather than a Go decoder: xz decompresses the
// tarball's blocks in parallel (-T0) in about 5 s on two cores, where github.com/ulikunitz/xz, the
// well-kept pure-Go decoder, took 157 s for Debian's 145 MiB linux-source-6.12.tar.xz (measured here).
func readTarball(ctx context.Context, file string) (*kernelTree, error) {
	switch {
	case strings.HasSuffix(file, ".tar"):
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readTar(f)
	case !strings.HasSuffix(file, ".tar.xz") && !strings.HasSuffix(file, ".txz"):
		return nil, errors.New("not a directory, .tar or .tar.xz")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "xz", "-dc", "-T0", file)
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting xz: %w", err)
	}
	t, rerr := readTar(out)
	if rerr != nil {
		cancel() // xz may be blocked writing: stop it so that Wait returns
	}
	werr := cmd.Wait()
	if msg := strings.TrimSpace(stderr.String()); msg != "" && (rerr != nil || werr != nil) {
		// A tar error on a truncated stream is xz's failure: say what xz said.
		return nil, fmt.Errorf("decompressing with xz: %s", msg)
	}
	if rerr != nil {
		return nil, rerr
	}
	if werr != nil {
		return nil, fmt.Errorf("decompressing with xz: %w", werr)
	}
	return t, nil
}

// readTar reads the wanted members of a tar stream whose members sit under one top directory
// (linux-source-6.12/...), and drains the stream.
func readTar(r io.Reader) (*kernelTree, error) {
	t := &kernelTree{files: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		_, rel, ok := strings.Cut(path.Clean(h.Name), "/")
		if !ok {
			continue
		}
		always, cFile := wanted(rel)
		if !always && !cFile {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", h.Name, err)
		}
		if always || definesSyscall(b) {
			t.files[rel] = b
		}
	}
	// What follows the tar's end is read too, so that xz exits cleanly.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, fmt.Errorf("reading tar: %w", err)
	}
	return t, nil
}

var makeVar = regexp.MustCompile(`(?m)^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=[ \t]*(\S*)`)

// version is the tree's kernel version from its top Makefile: "6.12.117".
func (t *kernelTree) version() (string, error) {
	v := map[string]string{}
	for _, m := range makeVar.FindAllSubmatch(t.files[topMakefile], -1) {
		if _, ok := v[string(m[1])]; !ok {
			v[string(m[1])] = string(m[2])
		}
	}
	if v["VERSION"] == "" || v["PATCHLEVEL"] == "" {
		return "", errors.New("reading the kernel version: no VERSION or PATCHLEVEL in the top Makefile")
	}
	s := v["VERSION"] + "." + v["PATCHLEVEL"]
	if v["SUBLEVEL"] != "" {
		s += "." + v["SUBLEVEL"]
	}
	return s + v["EXTRAVERSION"], nil
}

// newestSource is the newest /usr/src/linux-source-X.Y.tar.xz (as Debian's linux-source-X.Y installs it).
func newestSource(dir string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "linux-source-*.tar.xz"))
	if err != nil {
		return "", err
	}
	var best string
	var bestV []int
	for _, m := range matches {
		v, ok := parseVersion(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "linux-source-"), ".tar.xz"))
		if ok && (best == "" || slices.Compare(v, bestV) > 0) {
			best, bestV = m, v
		}
	}
	if best == "" {
		return "", fmt.Errorf("no %s/linux-source-*.tar.xz: install a linux-source-X.Y package or pass -src", dir)
	}
	return best, nil
}

func parseVersion(s string) ([]int, bool) {
	var v []int
	for _, f := range strings.Split(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		v = append(v, n)
	}
	return v, len(v) > 0
}
