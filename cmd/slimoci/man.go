package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Man pages, made from the kong model: slimoci.1 (the global flags and the commands) and one page per
// command, slimoci-build.1 and so on, as git and podman have them.
//
// Written here, in a few roff macros, rather than with mango-kong (muesli/mango, muesli/roff): mango-kong
// prints a command's detail glued to its name, documents no positional argument, lists hidden flags and makes
// one page only; muesli/roff formats text through Printf (a '%' in a help garbles it) and lets a line that
// starts with ' through as a roff request.

// ManCmd writes the man pages into a directory: `make man`. Hidden: a build step, not a user's command.
type ManCmd struct {
	Dir string `arg:"" help:"Directory to write the pages into (made if missing)." name:"DIR" type:"path"`
}

func (c *ManCmd) Run(kctx *kong.Context) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", c.Dir, err)
	}
	date := time.Now().UTC()
	// SOURCE_DATE_EPOCH dates the pages for a reproducible build.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("reading SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	for _, p := range manPages(kctx.Model, date.Format("2006-01-02")) {
		path := filepath.Join(c.Dir, p.name+".1")
		if err := os.WriteFile(path, []byte(p.text), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

type manPage struct{ name, text string }

// manPages renders the application's page and one page per visible command, nested commands included.
func manPages(app *kong.Application, date string) []manPage {
	var cmds []*kong.Node
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, c := range n.Children {
			if !c.Hidden {
				cmds = append(cmds, c)
				walk(c)
			}
		}
	}
	walk(app.Node)

	var root roff
	root.header("slimoci", date)
	help, detail, _ := strings.Cut(strings.TrimSpace(app.Help), "\n")
	root.section("NAME")
	root.text("slimoci - " + strings.TrimPrefix(strings.TrimSuffix(help, "."), "slimoci "))
	root.section("SYNOPSIS")
	root.line(`\fBslimoci\fR [\fIGLOBAL OPTIONS\fR] \fICOMMAND\fR [\fIOPTIONS\fR] [\fIARGUMENTS\fR]`)
	root.section("DESCRIPTION")
	root.text(help + "\n\n" + strings.TrimSpace(detail))
	root.section("COMMANDS")
	for _, c := range cmds {
		root.tagged(`\fB` + escape(c.FullPath()) + `\fR`)
		root.text(c.Help + " See " + manName(c) + "(1).")
	}
	root.section("GLOBAL OPTIONS")
	root.flags(app.Node.Flags)
	root.seeAlso(cmds)
	pages := []manPage{{"slimoci", root.String()}}

	for _, c := range cmds {
		var p roff
		p.header(manName(c), date)
		p.section("NAME")
		p.text(manName(c) + " - " + strings.TrimSuffix(c.Help, "."))
		p.section("SYNOPSIS")
		syn := `\fB` + escape(c.FullPath()) + `\fR [\fIOPTIONS\fR]`
		for _, a := range c.Positional {
			arg := `\fI` + escape(a.Name) + `\fR`
			if a.IsCumulative() {
				arg += "..."
			}
			if !a.Required {
				arg = "[" + arg + "]"
			}
			syn += " " + arg
		}
		if len(c.Children) > 0 {
			syn += ` \fICOMMAND\fR`
		}
		p.line(syn)
		p.section("DESCRIPTION")
		p.text(c.Help)
		if c.Detail != "" {
			p.text(c.Detail)
		}
		if len(c.Positional) > 0 {
			p.section("ARGUMENTS")
			for _, a := range c.Positional {
				p.tagged(`\fI` + escape(a.Name) + `\fR`)
				p.text(a.Help)
			}
		}
		if visible(c.Flags) {
			p.section("OPTIONS")
			p.flags(c.Flags)
		}
		p.section("GLOBAL OPTIONS")
		p.text("The global options of slimoci(1): " + strings.Join(flagList(app.Node.Flags), ", ") + ".")
		p.seeAlso(nil)
		pages = append(pages, manPage{manName(c), p.String()})
	}
	return pages
}

// manName is a command's page name: slimoci-build.
func manName(n *kong.Node) string { return strings.ReplaceAll(n.FullPath(), " ", "-") }

func visible(flags []*kong.Flag) bool {
	return slices.ContainsFunc(flags, func(f *kong.Flag) bool { return !f.Hidden })
}

func flagList(flags []*kong.Flag) []string {
	var out []string
	for _, f := range flags {
		if !f.Hidden {
			out = append(out, "--"+f.Name)
		}
	}
	return out
}

// roff builds a man(7) page.
type roff struct{ strings.Builder }

func (r *roff) line(s string) { r.WriteString(s + "\n") }

func (r *roff) header(name, date string) {
	r.line(`.\" Made by slimoci man (make man) from slimoci's command line; do not edit.`)
	r.line(fmt.Sprintf(`.TH %s 1 %s %s "slimoci manual"`, quote(strings.ToUpper(name)), quote(date), quote("slimoci "+version)))
	// Ragged right, no hyphenation: flag names and image references are long words a reader copies.
	r.line(".ad l")
	r.line(".nh")
}

func (r *roff) section(title string) { r.line(".SH " + quote(title)) }

// tagged starts a paragraph tagged with the roff line tag: the text after it is indented.
func (r *roff) tagged(tag string) { r.line(".TP"); r.line(tag) }

// text writes plain text: blank lines separate paragraphs, a line indented stays on a line of its own.
func (r *roff) text(s string) {
	for i, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if i > 0 {
			r.line(".PP")
		}
		for _, l := range strings.Split(para, "\n") {
			if strings.HasPrefix(l, " ") {
				r.line(".br") // kong's help keeps such lines as they are: an example, a table
			}
			r.line(escape(l))
		}
	}
}

// flags writes each visible flag as kong's help spells it (-q, --quiet; --[no-]verify; --jobs=N; an enum's
// values), its help and its default.
func (r *roff) flags(flags []*kong.Flag) {
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		name := `\fB\-\-` + escape(f.Name) + `\fR`
		if f.Tag.Negatable == "_" {
			name = `\fB\-\-[no\-]` + escape(f.Name) + `\fR`
		} else if neg := negatedName(f); neg != "" {
			name += `, \fB` + escape(neg) + `\fR`
		}
		if f.Short != 0 {
			name = `\fB\-` + string(f.Short) + `\fR, ` + name
		}
		if !f.IsBool() && !f.IsCounter() {
			value := f.PlaceHolder
			if f.Enum != "" {
				value = strings.Join(slices.DeleteFunc(f.EnumSlice(), func(s string) bool { return s == "" }), "|")
			} else if value == "" {
				value = strings.ToUpper(f.Name)
			}
			// \: lets a long placeholder ([[PROTO:]NAME:]...) break after a colon.
			name += `=\fI` + strings.ReplaceAll(escape(value), ":", `:\:`) + `\fR`
		}
		r.tagged(name)
		help := f.Help
		if f.HasDefault && f.Default != "" && !f.IsBool() {
			help += " Default: " + f.Default + "."
		}
		r.text(help)
	}
}

// seeAlso ends a page: the command pages from the application's, slimoci(1) from a command's.
func (r *roff) seeAlso(cmds []*kong.Node) {
	r.section("SEE ALSO")
	if cmds == nil {
		r.line(`\fBslimoci\fR(1)`)
		return
	}
	refs := make([]string, 0, len(cmds))
	for _, c := range cmds {
		refs = append(refs, `\fB`+escape(manName(c))+`\fR(1)`)
	}
	r.line(strings.Join(refs, ", "))
}

// escape makes text roff's: a backslash is printed, a - is a hyphen-minus (a flag copied from the page works),
// a line starting with . or ' is text, not a request.
func escape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// quote is a roff macro argument: in double quotes, a double quote doubled.
func quote(s string) string { return `"` + strings.ReplaceAll(escape(s), `"`, `""`) + `"` }
