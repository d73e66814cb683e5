package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
)

// Shell completion. The shell runs slimoci itself with the line typed so far in COMP_LINE (and the cursor in
// COMP_POINT), posener/complete's protocol; slimoci answers from its kong model: commands, flags, enum values,
// files for path flags, directories for directory flags and arguments, image reference transports.
//
// Why not kongplete (or jotaen/kong-completion, its fork), which map a kong model onto posener/complete too:
// their predictors come only from `predictor:"..."` struct tags, so type:"path", existingdir and image
// arguments would complete nothing without tagging every field; they count a parent command's flag value
// (`--jobs 4`) as a positional argument; they do not know --no-FLAG; and their scripts are one
// `complete -C` line, with which bash puts a space after `oci:` and doubles the `oci:` bash's COMP_WORDBREAKS
// cut off (`oci:oci:dir`). So the model is walked here (completeCommand) and the scripts are the few lines
// below; posener/complete does the parsing of the line and the file and directory listing.

// CompletionCmd prints the script that makes a shell complete slimoci's command lines.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

func (c *CompletionCmd) Help() string {
	return `Load it in the shell's startup file:

  bash  ~/.bashrc:                   source <(slimoci completion bash)
  zsh   ~/.zshrc, after compinit:    source <(slimoci completion zsh)
  fish  ~/.config/fish/config.fish:  slimoci completion fish | source

The script runs this slimoci binary (its absolute path) to complete a line.`
}

func (c *CompletionCmd) Run(g *Globals) error {
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding slimoci's own path: %w", err)
	}
	script := map[string]string{"bash": bashScript, "zsh": zshScript, "fish": fishScript}[c.Shell]
	quote := shellQuote
	if c.Shell == "fish" {
		quote = fishQuote
	}
	_, err = io.WriteString(g.stdout, strings.ReplaceAll(script, "@BIN@", quote(bin)))
	return err
}

// The scripts pass the line to the cursor and, from bash, the word bash completes (it starts after the last
// of COMP_WORDBREAKS, ':' and '=' among them), which slimoci's answers are cut to. A single answer that is a
// start (a directory/, oci:, --flag=) gets no space after it.
const bashScript = `# slimoci completion for bash: source <(slimoci completion bash)
_slimoci() {
	local IFS=$'\n'
	COMPREPLY=($(COMP_LINE="${COMP_LINE:0:COMP_POINT}" COMP_POINT="$COMP_POINT" SLIMOCI_COMP_WORD="$2" @BIN@ 2>/dev/null))
	if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[/:=] ]]; then
		compopt -o nospace
	fi
}
complete -F _slimoci slimoci
`

// zsh completes whole shell words: slimoci's answers are the word as a whole.
const zshScript = `# slimoci completion for zsh (after compinit): source <(slimoci completion zsh)
_slimoci() {
	local line="${(j: :)words[1,CURRENT-1]} $PREFIX" c
	local -a answers
	answers=("${(@f)$(COMP_LINE="$line" COMP_POINT=${#line} @BIN@ 2>/dev/null)}")
	for c in "${answers[@]}"; do
		[[ -n $c ]] || continue
		if [[ $c == *[/:=] ]]; then
			compadd -S '' -- "$c"
		else
			compadd -- "$c"
		fi
	done
}
compdef _slimoci slimoci
`

// fish: kongplete's function. fish itself puts no space after an answer ending in / : or =.
const fishScript = `# slimoci completion for fish: slimoci completion fish | source
function __slimoci_complete
	set -lx COMP_LINE (commandline -cp)
	test -z (commandline -ct)
	and set COMP_LINE "$COMP_LINE "
	@BIN@ 2>/dev/null
end
complete -c slimoci -f -a '(__slimoci_complete)'
`

// shellQuote quotes s for bash and zsh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote quotes s for fish, where \ and ' are escaped inside single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// completeFromEnv answers a shell's completion request (COMP_LINE set, by the scripts above) on stdout and
// reports whether it was one. main calls it after libcontainer's init dispatch and before Main.
func completeFromEnv(stdout io.Writer) bool {
	line, ok := os.LookupEnv("COMP_LINE")
	if !ok {
		return false
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("slimoci"), kong.Description(description))
	if err != nil {
		return true // nothing to offer; the shell shows no error either way
	}
	cmp := complete.New("slimoci", completeCommand(parser.Model.Node, nil))
	var out bytes.Buffer
	cmp.Out = &out
	cmp.Complete() // reads COMP_LINE and COMP_POINT
	if p, err := strconv.Atoi(os.Getenv("COMP_POINT")); err == nil && p >= 0 && p < len(line) {
		line = line[:p]
	}
	word, cut := os.LookupEnv("SLIMOCI_COMP_WORD")
	predicted := slices.DeleteFunc(strings.Split(out.String(), "\n"), func(s string) bool { return s == "" })
	for _, a := range answers(line, predicted, word, cut) {
		fmt.Fprintln(stdout, a)
	}
	return true
}

// answers turns posener/complete's answers into what the shell inserts. posener completes the part of the
// last word after its last '=' (so --flag=VALUE completes VALUE): the answers are given the word's start
// back. With cut (bash), each is then cut to the word bash completes, which ends the line's last word.
func answers(line string, predicted []string, word string, cut bool) []string {
	last := ""
	if !strings.HasSuffix(line, " ") {
		if f := strings.Fields(line); len(f) > 0 {
			last = f[len(f)-1]
		}
	}
	head := last[:strings.LastIndex(last, "=")+1]
	out := make([]string, 0, len(predicted))
	for _, p := range predicted {
		a := head + p
		if cut && strings.HasSuffix(last, word) {
			a = a[len(last)-len(word):]
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// completeCommand maps a kong command onto posener/complete's: its visible subcommands, its flags (global:
// posener offers them after subcommands too, as kong takes them) and its positional arguments. inherited
// are the flags of the commands above, which take values the positional count must skip.
func completeCommand(node *kong.Node, inherited []*kong.Flag) complete.Command {
	cmd := complete.Command{Sub: complete.Commands{}, GlobalFlags: complete.Flags{}}
	flags := append(slices.Clip(inherited), node.Flags...)
	for _, child := range node.Children {
		if child.Hidden {
			continue
		}
		sub := completeCommand(child, flags)
		for _, name := range append([]string{child.Name}, child.Aliases...) {
			cmd.Sub[name] = sub
		}
	}
	for _, f := range node.Flags {
		if f.Hidden {
			continue
		}
		p := predictor(f.Value, f.PlaceHolder)
		for _, name := range flagNames(f) {
			cmd.GlobalFlags[name] = p
		}
		if neg := negatedName(f); neg != "" {
			cmd.GlobalFlags[neg] = nil
		}
	}
	if len(node.Positional) > 0 {
		pos := positionals{valueFlags: map[string]bool{}}
		for _, f := range flags {
			if !f.IsBool() && !f.IsCounter() {
				for _, name := range flagNames(f) {
					pos.valueFlags[name] = true
				}
			}
		}
		for _, arg := range node.Positional {
			pos.predictors = append(pos.predictors, predictor(arg, ""))
		}
		pos.repeatLast = node.Positional[len(node.Positional)-1].IsCumulative()
		cmd.Args = pos
	}
	return cmd
}

// flagNames are --name, its aliases and -s.
func flagNames(f *kong.Flag) []string {
	names := []string{"--" + f.Name}
	for _, a := range f.Aliases {
		names = append(names, "--"+a)
	}
	if f.Short != 0 {
		names = append(names, "-"+string(f.Short))
	}
	return names
}

// negatedName is a negatable flag's --no-NAME (or the name its tag gives), as kong spells it.
func negatedName(f *kong.Flag) string {
	switch f.Tag.Negatable {
	case "":
		return ""
	case "_": // kong's placeholder for the default negation
		return "--no-" + f.Name
	default:
		return "--" + f.Tag.Negatable
	}
}

// positionals completes the positional argument the word is: words that are flags, or the value after a flag
// that takes one (not --flag=value), are not counted.
type positionals struct {
	predictors []complete.Predictor
	repeatLast bool // the last argument takes every word after it
	valueFlags map[string]bool
}

func (p positionals) Predict(a complete.Args) []string {
	n := 0
	for i, w := range a.Completed {
		if strings.HasPrefix(w, "-") && w != "-" {
			continue
		}
		if i > 0 && p.valueFlags[a.Completed[i-1]] {
			continue
		}
		n++
	}
	if n >= len(p.predictors) {
		if !p.repeatLast {
			return nil
		}
		n = len(p.predictors) - 1
	}
	if p.predictors[n] == nil {
		return nil
	}
	return p.predictors[n].Predict(a)
}

// imageValues name the arguments and flags that take an image reference: kong's model has no type for one.
// A field can also say so itself with kongplete's tag, predictor:"image" (or "dir", "file").
var imageValues = []string{"IMAGE", "SOURCE", "DESTINATION", "output"}

// predictor completes a value from what the model says of it: a bool takes none; an enum its values; an
// image reference a transport, or what follows one; a path a file, or a directory where its name or
// placeholder says DIR or it is a --...-path or --...-dir; anything else is not guessed.
func predictor(v *kong.Value, placeholder string) complete.Predictor {
	if v.IsBool() || v.IsCounter() {
		return nil
	}
	switch v.Tag.Get("predictor") {
	case "image":
		return complete.PredictFunc(predictImage)
	case "dir":
		return complete.PredictDirs("*")
	case "file":
		return complete.PredictFiles("*")
	}
	if v.Enum != "" {
		return complete.PredictSet(slices.DeleteFunc(v.EnumSlice(), func(s string) bool { return s == "" })...)
	}
	if slices.Contains(imageValues, v.Name) {
		return complete.PredictFunc(predictImage)
	}
	switch v.Tag.Type {
	case "existingdir":
		return complete.PredictDirs("*")
	case "path", "existingfile", "filecontent":
		if v.Tag.Type == "path" && (strings.EqualFold(placeholder, "DIR") || strings.EqualFold(v.Name, "DIR") ||
			strings.HasSuffix(v.Name, "-dir") || strings.HasSuffix(v.Name, "-path")) {
			return complete.PredictDirs("*")
		}
		return complete.PredictFiles("*")
	}
	return complete.PredictAnything
}

// transports are the image reference prefixes slimoci reads and writes (oci.ParseReference), with what
// follows each: an OCI layout is a directory, the archives are files, docker:// is a registry's.
var transports = []struct {
	prefix string
	path   complete.Predictor
}{
	{"oci:", complete.PredictDirs("*")},
	{"oci-archive:", complete.PredictFiles("*")},
	{"docker-archive:", complete.PredictFiles("*")},
	{"docker://", nil},
}

// predictImage completes an image reference: after a transport, its directory or file; before one, the
// transports, and files and directories (a plain path to a layout or an archive).
func predictImage(a complete.Args) []string {
	for _, t := range transports {
		rest, ok := strings.CutPrefix(a.Last, t.prefix)
		if !ok {
			continue
		}
		if t.path == nil {
			return nil
		}
		b := a
		b.Last = rest
		var out []string
		for _, p := range t.path.Predict(b) {
			out = append(out, t.prefix+p)
		}
		return out
	}
	var out []string
	for _, t := range transports {
		out = append(out, t.prefix)
	}
	return append(out, complete.PredictFiles("*").Predict(a)...)
}
