package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseDefines(t *testing.T) {
	src := `
/* SYSCALL_DEFINE1(commented, int, x) */
SYSCALL_DEFINE4(openat, int, dfd, const char __user *, filename, int, flags,
		umode_t, mode)
{
}
COMPAT_SYSCALL_DEFINE2(open, const char __user *, filename, int, flags)
SYSCALL32_DEFINE6(fanotify_mark,
				int, fanotify_fd, unsigned int, flags,
				SC_ARG64(mask), int, dfd,
				const char  __user *, pathname)
SYSCALL_DEFINE0(sync)
`
	got, err := parseDefines("x.c", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []proto{
		{fn: "sys_openat", where: "x.c:3", params: []param{{"int", "dfd"}, {"const char __user *", "filename"}, {"int", "flags"}, {"umode_t", "mode"}}},
		{fn: "compat_sys_open", where: "x.c:7", params: []param{{"const char __user *", "filename"}, {"int", "flags"}}},
		{fn: "compat_sys_fanotify_mark", where: "x.c:8", params: []param{
			{"int", "fanotify_fd"}, {"unsigned int", "flags"}, {"u32", "mask_lo"}, {"u32", "mask_hi"}, {"int", "dfd"}, {"const char __user *", "pathname"},
		}},
		{fn: "sys_sync", where: "x.c:12"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if _, err := parseDefines("bad.c", []byte("SYSCALL_DEFINE2(x, int, a)\n")); err == nil {
		t.Error("a SYSCALL_DEFINE2 with one parameter: no error")
	}
}

func TestParseHeader(t *testing.T) {
	src := `asmlinkage long sys_bind(int, struct sockaddr __user *, int);
asmlinkage long sys_symlink(const char __user *old, const char __user *new);
asmlinkage long sys_ni_syscall(void);
asmlinkage long sys_x(unsigned long, umode_t mode, const char __user * filename /* c */);`
	got := parseHeader("h", []byte(src))
	want := []proto{
		{fn: "sys_bind", where: "h", params: []param{{"int", ""}, {"struct sockaddr __user *", ""}, {"int", ""}}},
		{fn: "sys_symlink", where: "h", params: []param{{"const char __user *", "old"}, {"const char __user *", "new"}}},
		{fn: "sys_ni_syscall", where: "h"},
		{fn: "sys_x", where: "h", params: []param{{"unsigned long", ""}, {"umode_t", "mode"}, {"const char __user *", "filename"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestIsCharPtr(t *testing.T) {
	for typ, want := range map[string]bool{
		"const char __user *":                true,
		"char __user *":                      true,
		"const char  __user *":               true,
		"const char __user *const __user *":  false, // argv
		"unsigned char __user *":             false,
		"const void __user *":                false,
		"struct sockaddr __user *":           false,
		"compat_uptr_t __user *":             false,
		"const compat_uptr_t __user *":       false,
		"char":                               false,
		"const char __user * const __user *": false,
	} {
		if got := (param{typ: typ}).isCharPtr(); got != want {
			t.Errorf("%q: %v, want %v", typ, got, want)
		}
	}
}

func TestParseTable(t *testing.T) {
	src := `# comment
0	common	read			sys_read
5	i386	open			sys_open			compat_sys_open
1	i386	exit			sys_exit			-			noreturn
183	common	afs_syscall
512	x32	rt_sigaction		compat_sys_rt_sigaction
`
	got, err := parseTable("t", []byte(src), "common", "i386")
	if err != nil {
		t.Fatal(err)
	}
	want := []tableEntry{
		{nr: 0, abi: "common", name: "read", native: "sys_read"},
		{nr: 5, abi: "i386", name: "open", native: "sys_open", compat: "compat_sys_open"},
		{nr: 1, abi: "i386", name: "exit", native: "sys_exit"},
		{nr: 183, abi: "common", name: "afs_syscall"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseTable("t", []byte("x common read sys_read\n"), "common"); err == nil {
		t.Error("a bad number: no error")
	}
}

// TestRulesRefuseTheUnknown: a char __user * parameter the rules do not know fails the generator with its
// name, and so does a path with no op.
func TestRulesRefuseTheUnknown(t *testing.T) {
	g := &generator{used: map[string]bool{}}
	p := proto{fn: "sys_frob", where: "frob.c:1", params: []param{{"int", "dfd"}, {"const char __user *", "frobname"}, {"const char __user *", "filename"}}}
	g.pathArgs(amd64Spec, "frob", p)
	joined := strings.Join(g.errs, "\n")
	for _, want := range []string{`parameter "frobname" of sys_frob`, `"filename" (frob.c:1) names a file but has no op`} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors %q: none says %q", g.errs, want)
		}
	}
}

func TestPathArgs(t *testing.T) {
	g := &generator{used: map[string]bool{}}
	linkat := proto{fn: "sys_linkat", params: []param{
		{"int", "olddfd"}, {"const char __user *", "oldname"}, {"int", "newdfd"}, {"const char __user *", "newname"}, {"int", "flags"},
	}}
	got := g.pathArgs(amd64Spec, "linkat", linkat)
	want := []pathArg{
		{arg: 1, kind: "argPath", dirfd: 0, flags: 4, len: -1, op: "hardlink"},
		{arg: 3, kind: "argPath", dirfd: 2, flags: -1, len: -1, op: "hardlink-to"},
	}
	if len(g.errs) > 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("linkat: %+v (errors %q), want %+v", got, g.errs, want)
	}
}

// TestReadTarball reads a small .tar.xz as Debian ships the kernel: the fixed files, and only the C files
// that define syscalls outside the directories of the architectures not decoded (arm's, user-mode Linux's)
// and of the tree's scripts and tools.
func TestReadTarball(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz command (Debian's xz-utils)")
	}
	files := map[string]string{
		"Makefile":        "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n",
		table64:           "0 common read sys_read\n",
		table32:           "3 i386 read sys_read\n",
		tableGeneric:      "63 common read sys_read\n",
		tableARM:          "3 common read sys_read\n",
		tablePPC:          "3 common read sys_read\n",
		tableS390:         "3 common read sys_read sys_read\n",
		"scripts/x.c":     "SYSCALL_DEFINE0(script)\n",
		"arch/arm64/a.c":  "SYSCALL_DEFINE0(arm64_only)\n",
		syscallsH:         "asmlinkage long sys_read(unsigned int fd, char __user *buf, size_t count);\n",
		compatH:           "\n",
		"fs/read_write.c": "SYSCALL_DEFINE3(read, unsigned int, fd, char __user *, buf, size_t, count)\n",
		"fs/other.c":      "int x;\n",
		"arch/arm/foo.c":  "SYSCALL_DEFINE0(arm_only)\n",
		"arch/x86/k.c":    "SYSCALL32_DEFINE0(sigreturn)\n",
		"arch/x86/um/u.c": "SYSCALL_DEFINE0(um_only)\n",
		"tools/t.c":       "SYSCALL_DEFINE0(tool)\n",
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: "linux-source-6.12/" + n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	xz := exec.Command("xz", "-z", "-c")
	xz.Stdin = &tb
	compressed, err := xz.Output()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "linux-source-6.12.tar.xz")
	if err := os.WriteFile(file, compressed, 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := readKernel(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range tree.files {
		got = append(got, n)
	}
	slices.Sort(got)
	want := append([]string{"arch/arm64/a.c", "arch/x86/k.c", "fs/read_write.c"}, fixedFiles...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
	if v, err := tree.version(); err != nil || v != "6.12.117" {
		t.Errorf("version %q, %v", v, err)
	}
	if _, err := readKernel(context.Background(), filepath.Join(t.TempDir(), "none.tar.xz")); err == nil {
		t.Error("a missing tarball: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.tar.xz")
	os.WriteFile(bad, []byte("not xz"), 0o644)
	if _, err := readKernel(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "xz") {
		t.Errorf("a corrupt tarball: %v", err)
	}
}

func TestNewestSource(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"linux-source-6.1.tar.xz", "linux-source-6.12.tar.xz", "linux-source-6.9.tar.xz", "linux-source-x.tar.xz"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := newestSource(dir)
	if err != nil || filepath.Base(got) != "linux-source-6.12.tar.xz" {
		t.Errorf("newest: %q, %v", got, err)
	}
	if _, err := newestSource(t.TempDir()); err == nil {
		t.Error("no tarball: no error")
	}
}
