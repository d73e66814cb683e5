// Package reverse explains an image: what it holds (Inspect) and the Dockerfile its history implies
// (Dockerfile), as docker-slim's Dockerfile.fat.
package reverse

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Dockerfile reverse-engineers a Dockerfile from an image's history. Each entry becomes one instruction:
// docker's and podman's "/bin/sh -c #(nop) X" becomes X and "/bin/sh -c CMD" becomes RUN CMD; BuildKit's
// "X # buildkit" becomes X; build arguments recorded as "|N A=1 B=2 CMD" become ARG lines before the RUN.
// An entry with no command becomes a comment saying so. The result starts with FROM scratch, as the history
// covers the base image's layers too.
func Dockerfile(history []v1.History) string {
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	g := generator{declared: map[string]string{}}
	for i, h := range history {
		for _, line := range g.entry(i, h) {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Instruction renders one history entry's created_by as a Dockerfile instruction ("" when it records none).
// Build arguments are dropped; Dockerfile declares them.
func Instruction(createdBy string) string {
	_, ins := parse(createdBy)
	return ins
}

type generator struct {
	declared map[string]string
}

func (g *generator) entry(i int, h v1.History) []string {
	var out []string
	if base, ok := strings.CutPrefix(h.Comment, "FROM "); ok && !isHexID(base) {
		out = append(out, "# FROM "+base+" (named in the history's comment)")
	}
	args, ins := parse(h.CreatedBy)
	if ins == "" {
		what := "history entry"
		if !h.EmptyLayer {
			what = "layer"
		}
		c := fmt.Sprintf("# %s %d: no command recorded", what, i)
		if h.Comment != "" {
			c += fmt.Sprintf(" (comment: %q)", h.Comment)
		}
		return append(out, c)
	}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if old, ok := g.declared[k]; ok && old == v {
			continue
		}
		g.declared[k] = v
		out = append(out, "ARG "+a)
	}
	if k, v, ok := strings.Cut(strings.TrimPrefix(ins, "ARG "), "="); ok && strings.HasPrefix(ins, "ARG ") {
		g.declared[k] = v
	}
	return append(out, ins)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

func isHexID(s string) bool { return hexID.MatchString(s) }

const (
	shellNop = "/bin/sh -c #(nop)"
	shell    = "/bin/sh -c "
)

// keywords are the Dockerfile instructions, as BuildKit records them.
var keywords = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true, "EXPOSE": true,
	"HEALTHCHECK": true, "LABEL": true, "MAINTAINER": true, "ONBUILD": true, "RUN": true, "SHELL": true,
	"STOPSIGNAL": true, "USER": true, "VOLUME": true, "WORKDIR": true,
}

var buildArgs = regexp.MustCompile(`^\|(\d+) `)

// parse returns the build arguments recorded with an entry and its instruction.
func parse(createdBy string) (args []string, ins string) {
	s := strings.TrimSpace(createdBy)
	if s == "" {
		return nil, ""
	}
	if t, ok := strings.CutSuffix(s, "# buildkit"); ok {
		s = strings.TrimSpace(t)
	}
	// BuildKit: "RUN |1 A=1 /bin/sh -c cmd"
	buildkitRun := false
	if t, ok := strings.CutPrefix(s, "RUN "); ok {
		s, buildkitRun = strings.TrimSpace(t), true
	}
	if m := buildArgs.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		rest := s[len(m[0]):]
		for i := 0; i < n; i++ {
			a, r, _ := strings.Cut(rest, " ")
			args = append(args, a)
			rest = r
		}
		s, buildkitRun = strings.TrimSpace(rest), true
	}
	if t, ok := strings.CutPrefix(s, shellNop); ok {
		return args, instruction(strings.TrimSpace(t))
	}
	if t, ok := strings.CutPrefix(s, shell); ok {
		return args, run(strings.TrimSpace(t))
	}
	if buildkitRun {
		return args, run(s)
	}
	kw, _, _ := strings.Cut(s, " ")
	if keywords[strings.ToUpper(kw)] {
		return args, instruction(s)
	}
	// Anything else is a command some builder ran without a shell.
	return args, run(s)
}

var addIn = regexp.MustCompile(`^((?:file|dir|multi):[0-9a-f]+) in (.+)$`)

// instruction normalizes "KEYWORD args" to the form a Dockerfile takes.
func instruction(s string) string {
	kw, rest, _ := strings.Cut(s, " ")
	kw = strings.ToUpper(kw)
	rest = strings.TrimSpace(rest)
	switch kw {
	case "RUN":
		return run(strings.TrimPrefix(rest, shell))
	case "ADD", "COPY":
		if m := addIn.FindStringSubmatch(rest); m != nil {
			return kw + " " + m[1] + " " + strings.TrimSpace(m[2])
		}
	case "EXPOSE":
		if inner, ok := goMap(rest); ok {
			return kw + " " + strings.Join(inner, " ")
		}
	case "CMD", "ENTRYPOINT", "SHELL", "VOLUME":
		if list, ok := goList(rest); ok {
			return kw + " " + jsonList(list)
		}
	case "HEALTHCHECK":
		if hc, ok := healthcheck(rest); ok {
			return hc
		}
	case "ONBUILD":
		return kw + " " + instruction(rest)
	}
	if rest == "" {
		return kw
	}
	return kw + " " + rest
}

// run renders a shell command, splitting long && chains over lines.
func run(cmd string) string {
	parts := splitAndAnd(cmd)
	var b strings.Builder
	b.WriteString("RUN ")
	for i, p := range parts {
		if i > 0 {
			b.WriteString(" && \\\n\t")
		}
		b.WriteString(p)
	}
	// A command spanning lines (a heredoc, a multi-line script) continues its lines.
	return continueLines(b.String())
}

// continueLines ends every line but the last with a backslash, unless it already has one.
func continueLines(s string) string {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines)-1; i++ {
		if !strings.HasSuffix(lines[i], "\\") {
			lines[i] += " \\"
		}
	}
	return strings.Join(lines, "\n")
}

// splitAndAnd splits a shell command at && outside quotes.
func splitAndAnd(s string) []string {
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\\':
			i++
		case c == '\'' || c == '"':
			quote = c
		case c == '&' && i+1 < len(s) && s[i+1] == '&':
			parts = append(parts, strings.TrimSpace(s[start:i]))
			start = i + 2
			i++
		}
	}
	parts = append(parts, strings.TrimSpace(s[start:]))
	out := parts[:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// goMap reads the keys of a Go-formatted map of empty structs: map[80/tcp:{} 443/tcp:{}].
func goMap(s string) ([]string, bool) {
	inner, ok := strings.CutPrefix(s, "map[")
	if !ok || !strings.HasSuffix(inner, "]") {
		return nil, false
	}
	var keys []string
	for _, f := range strings.Fields(strings.TrimSuffix(inner, "]")) {
		keys = append(keys, strings.TrimSuffix(f, ":{}"))
	}
	return keys, true
}

// goList reads a list as docker and BuildKit record it: JSON (["a", "b"]), Go-quoted (["a" "b"]) or
// unquoted ([/data /logs]).
func goList(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, false
	}
	var list []string
	if json.Unmarshal([]byte(s), &list) == nil {
		return list, true
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	if !strings.HasPrefix(inner, `"`) {
		return strings.Fields(inner), true
	}
	for inner != "" {
		q, err := strconv.QuotedPrefix(inner)
		if err != nil {
			return nil, false
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, false
		}
		list = append(list, v)
		inner = strings.TrimSpace(inner[len(q):])
	}
	return list, true
}

func jsonList(list []string) string {
	if list == nil {
		list = []string{}
	}
	quoted := make([]string, len(list))
	for i, v := range list {
		b, _ := json.Marshal(v)
		quoted[i] = strings.ReplaceAll(string(b), `\u0026`, "&")
		quoted[i] = strings.ReplaceAll(quoted[i], `\u003c`, "<")
		quoted[i] = strings.ReplaceAll(quoted[i], `\u003e`, ">")
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// healthcheck reads docker's Go rendering of a health config:
// &{["CMD-SHELL" "curl -f http://localhost/"] "30s" "3s" "0s" ["0s"] '\x03'}.
func healthcheck(s string) (string, bool) {
	inner, ok := strings.CutPrefix(s, "&{")
	if !ok || !strings.HasSuffix(inner, "}") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, "}")
	end := strings.Index(inner, "] ")
	if end < 0 {
		return "", false
	}
	test, ok := goList(inner[:end+1])
	if !ok || len(test) == 0 {
		return "", false
	}
	fields := strings.Fields(inner[end+2:])
	if len(fields) < 2 {
		return "", false
	}
	retries, _, _, err := strconv.UnquoteChar(strings.Trim(fields[len(fields)-1], "'"), '\'')
	if err != nil {
		return "", false
	}
	names := []string{"interval", "timeout", "start-period", "start-interval"}
	var b strings.Builder
	b.WriteString("HEALTHCHECK")
	if test[0] == "NONE" {
		return "HEALTHCHECK NONE", true
	}
	for i, f := range fields[:len(fields)-1] {
		d, err := strconv.Unquote(f)
		if err != nil || i >= len(names) {
			return "", false
		}
		if d != "0s" && d != "" {
			fmt.Fprintf(&b, " --%s=%s", names[i], d)
		}
	}
	if retries != 0 {
		fmt.Fprintf(&b, " --retries=%d", retries)
	}
	switch test[0] {
	case "CMD-SHELL":
		b.WriteString(" CMD " + strings.Join(test[1:], " "))
	case "CMD":
		b.WriteString(" CMD " + jsonList(test[1:]))
	default:
		b.WriteString(" CMD " + jsonList(test))
	}
	return b.String(), true
}
