package main

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// tableEntry is one line of a syscall table (arch/x86/entry/syscalls/syscall_*.tbl):
// "<number> <abi> <name> [<entry point> [<compat entry point> [noreturn]]]".
type tableEntry struct {
	nr     uint32
	abi    string
	name   string
	native string // sys_openat; "" for a number with no entry point
	compat string // compat_sys_openat, what a 32-bit process reaches on a 64-bit kernel; "" for none
}

// parseTable reads a syscall table, keeping the lines of the given ABIs.
func parseTable(name string, data []byte, abis ...string) ([]tableEntry, error) {
	var out []tableEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: %q: want <number> <abi> <name> [<entry point> ...]", name, line, sc.Text())
		}
		nr, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: syscall number %q: %w", name, line, f[0], err)
		}
		if !slices.Contains(abis, f[1]) {
			continue
		}
		e := tableEntry{nr: uint32(nr), abi: f[1], name: f[2]}
		if len(f) > 3 && f[3] != "-" {
			e.native = f[3]
		}
		if len(f) > 4 && f[4] != "-" {
			e.compat = f[4]
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// param is one parameter of a syscall's prototype; name is "" where a header leaves it out.
type param struct {
	typ, name string
}

// proto is a syscall function's parameter list, and where it was read (for messages).
type proto struct {
	fn     string // sys_openat, compat_sys_open
	params []param
	where  string
}

// isCharPtr tells whether p is a `[const] char __user *`, the type of every path argument.
func (p param) isCharPtr() bool {
	t := strings.Join(strings.Fields(strings.NewReplacer("const", " ", "__user", " ", "*", " * ").Replace(p.typ)), " ")
	return t == "char *"
}

var (
	comments   = regexp.MustCompile(`(?s)/\*.*?\*/|//[^\n]*`)
	asmlinkage = regexp.MustCompile(`\basmlinkage\s+long\s+((?:compat_)?sys_\w+)\s*\(([^;{]*?)\)\s*;`)
	defineAt   = regexp.MustCompile(`(?m)^[ \t]*(COMPAT_SYSCALL|SYSCALL32|SYSCALL)_DEFINE([0-6])\s*\(`)
	sc64       = regexp.MustCompile(`^(?:SC_ARG64|compat_arg_u64_dual|arg_u32p)\s*\(\s*(\w+)\s*\)$`)
	ident      = regexp.MustCompile(`^[A-Za-z_]\w*$`)
)

// cTypeWords end a parameter that has no name ("unsigned int", "long").
var cTypeWords = map[string]bool{"int": true, "long": true, "short": true, "char": true, "unsigned": true, "signed": true, "void": true}

// parseHeader reads the prototypes of a header: `asmlinkage long sys_openat(int dfd, const char __user
// *filename, int flags, umode_t mode);`.
func parseHeader(where string, data []byte) []proto {
	src := uncomment(data)
	var out []proto
	for _, m := range asmlinkage.FindAllStringSubmatch(src, -1) {
		p := proto{fn: m[1], where: where}
		list := strings.TrimSpace(m[2])
		if list != "void" && list != "" {
			for _, a := range splitTop(list) {
				p.params = append(p.params, headerParam(a))
			}
		}
		out = append(out, p)
	}
	return out
}

// headerParam splits "const char __user * filename" into its type and name; "int" and "struct sockaddr
// __user *" have no name.
func headerParam(a string) param {
	a = strings.Join(strings.Fields(a), " ")
	if strings.HasSuffix(a, "*") {
		return param{typ: a}
	}
	i := strings.LastIndexAny(a, " *")
	if i < 0 {
		return param{typ: a}
	}
	name := a[i+1:]
	typ := strings.TrimSpace(a[:i+1])
	if cTypeWords[name] || !ident.MatchString(name) || typ == "struct" || typ == "union" || typ == "enum" {
		return param{typ: a}
	}
	return param{typ: typ, name: name}
}

// parseDefines reads the syscall definitions of a C file: `SYSCALL_DEFINE4(openat, int, dfd, const char
// __user *, filename, int, flags, umode_t, mode)` defines sys_openat; COMPAT_SYSCALL_DEFINEn defines
// compat_sys_*, and so does SYSCALL32_DEFINEn on a kernel with CONFIG_COMPAT (x86_64's). SC_ARG64(x), compat_arg_u64_dual(x) and arm64's arg_u32p(x), a 64-bit value passed in two 32-bit registers, are
// its two parameters (x86 is little-endian: low half first).
func parseDefines(where string, data []byte) ([]proto, error) {
	src := uncomment(data)
	var out []proto
	for _, loc := range defineAt.FindAllStringSubmatchIndex(src, -1) {
		line := 1 + strings.Count(src[:loc[0]], "\n")
		n, _ := strconv.Atoi(src[loc[4]:loc[5]])
		body, ok := balanced(src[loc[1]:])
		if !ok {
			return nil, fmt.Errorf("%s:%d: unbalanced SYSCALL_DEFINE", where, line)
		}
		args := splitTop(body)
		var flat []string
		for _, a := range args {
			if m := sc64.FindStringSubmatch(a); m != nil {
				flat = append(flat, "u32", m[1]+"_lo", "u32", m[1]+"_hi")
				continue
			}
			flat = append(flat, a)
		}
		if len(flat) != 1+2*n || !ident.MatchString(flat[0]) {
			return nil, fmt.Errorf("%s:%d: SYSCALL_DEFINE%d(%s): want a name and %d type, name pairs", where, line, n, body, n)
		}
		p := proto{fn: "sys_" + flat[0], where: fmt.Sprintf("%s:%d", where, line)}
		if src[loc[2]:loc[3]] != "SYSCALL" {
			p.fn = "compat_" + p.fn
		}
		for i := 1; i < len(flat); i += 2 {
			p.params = append(p.params, param{typ: strings.Join(strings.Fields(flat[i]), " "), name: flat[i+1]})
		}
		out = append(out, p)
	}
	return out, nil
}

// uncomment blanks out C comments, keeping their newlines so that line numbers stay right.
func uncomment(data []byte) string {
	return comments.ReplaceAllStringFunc(string(data), func(c string) string {
		return strings.Repeat("\n", strings.Count(c, "\n")) + " "
	})
}

// balanced is s up to the parenthesis that closes an already open one.
func balanced(s string) (string, bool) {
	depth := 1
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return s[:i], true
			}
		}
	}
	return "", false
}

// splitTop splits a parameter list at its top-level commas, trimmed.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}
