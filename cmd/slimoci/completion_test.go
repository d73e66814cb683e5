package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/creack/pty"
)

// Completion is tested as a user meets it: the real binary, built here, loaded by the script it prints into
// real bash, zsh and fish, which complete lines typed at a terminal (a pty).

// completionTree is a directory to complete file names in: two directories and a file.
func completionTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"layout", "other"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "image.tar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildSlimoci builds cmd/slimoci into a temporary directory, as `make build` does.
func buildSlimoci(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: the completion tests run the slimoci binary")
	}
	bin := filepath.Join(t.TempDir(), "slimoci")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func needShell(t *testing.T, shell string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed (testdata/testbed.sh deps installs it)", shell)
	}
	return path
}

// ask runs the binary as a shell's script does: COMP_LINE is the line to the cursor and, for bash, word is
// the word bash completes (after the last ':' or '=').
func ask(t *testing.T, bin, dir, line string, word *string) []string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COMP_LINE="+line, fmt.Sprintf("COMP_POINT=%d", len(line)))
	if word != nil {
		cmd.Env = append(cmd.Env, "SLIMOCI_COMP_WORD="+*word)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("completing %q: %v", line, err)
	}
	return strings.Fields(string(out))
}

func TestCompletion(t *testing.T) {
	bin := buildSlimoci(t)
	dir := completionTree(t)
	transports := []string{"docker-archive:", "docker://", "oci-archive:", "oci:"}
	bash := func(w string) *string { return &w }

	t.Run("answers", func(t *testing.T) {
		for _, tc := range []struct {
			name, line string
			word       *string // bash's word; nil: zsh and fish, which complete the whole word
			want       []string
			without    []string // answers that must not be there
		}{
			{name: "command", line: "slimoci bu", want: []string{"build"}},
			{name: "commands", line: "slimoci ", want: []string{"build", "completion", "copy", "info", "profile", "unpack", "version"}, without: []string{"man"}},
			{name: "hidden command", line: "slimoci ma"},
			{name: "flag", line: "slimoci build --compr", want: []string{"--compression"}},
			{name: "global flag after the command", line: "slimoci build --plat", want: []string{"--platform"}},
			{name: "negated flag", line: "slimoci build --no-ver", want: []string{"--no-verify"}},
			{name: "enum", line: "slimoci build --compression ", want: []string{"gzip", "zstd"}},
			{name: "enum after =, bash", line: "slimoci build --compression=z", word: bash("z"), want: []string{"zstd"}},
			{name: "enum after =, whole word", line: "slimoci build --compression=z", want: []string{"--compression=zstd"}},
			{name: "enum of the sensor backend", line: "slimoci profile --sensor-backend ", want: []string{"auto", "notify", "ptrace"}},
			{name: "shell", line: "slimoci completion ", want: []string{"bash", "fish", "zsh"}},
			{name: "image", line: "slimoci build ", want: append(slices.Clone(transports), "image.tar", "layout/", "other/")},
			{name: "transport", line: "slimoci build oc", want: []string{"oci-archive:", "oci:"}},
			{name: "layout after oci:, bash", line: "slimoci build oci:", word: bash(""), want: []string{"layout/", "other/"}, without: []string{"image.tar", "oci:layout/"}},
			{name: "layout after oci:, whole word", line: "slimoci build oci:la", want: []string{"oci:layout/"}},
			{name: "archive after docker-archive:, bash", line: "slimoci copy docker-archive:im", word: bash("im"), want: []string{"image.tar"}},
			{name: "registry after docker://", line: "slimoci info docker://"},
			{name: "destination", line: "slimoci copy oci:a ", want: transports},
			{name: "output flag", line: "slimoci build --output oci:", want: []string{"oci:layout/", "oci:other/"}, without: []string{"oci:image.tar"}},
			{name: "output flag after =, bash", line: "slimoci build --output=oci:o", word: bash("o"), want: []string{"other/"}},
			{name: "a global flag's value is no argument", line: "slimoci build --platform linux/amd64 ", want: transports},
			{name: "no argument after the last", line: "slimoci build oci:a "},
			{name: "directory argument", line: "slimoci unpack oci:a ", want: []string{"layout/", "other/"}, without: []string{"image.tar"}},
			{name: "state path is a directory", line: "slimoci build --state-path ", want: []string{"layout/", "other/"}, without: []string{"image.tar"}},
			{name: "work dir is a directory", line: "slimoci profile --work-dir o", want: []string{"other/"}},
			{name: "file flag", line: "slimoci info --dockerfile ", want: []string{"image.tar", "layout/", "other/"}},
			{name: "existing file flag", line: "slimoci build --env-file i", want: []string{"image.tar"}},
			{name: "a bool flag takes no value", line: "slimoci build --push ", want: transports},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := ask(t, bin, dir, tc.line, tc.word)
				for _, w := range tc.want {
					if !slices.Contains(got, w) {
						t.Errorf("completing %q: no %q in %q", tc.line, w, got)
					}
				}
				for _, w := range tc.without {
					if slices.Contains(got, w) {
						t.Errorf("completing %q: %q in %q", tc.line, w, got)
					}
				}
				if tc.want == nil && len(got) > 0 {
					t.Errorf("completing %q: want nothing, got %q", tc.line, got)
				}
			})
		}
	})

	t.Run("init is dispatched first", func(t *testing.T) {
		// libcontainer re-executes the binary as `slimoci init` with the environment it was given: that must
		// reach runner.Init even with COMP_LINE set, and never print completions.
		cmd := exec.Command(bin, "init")
		cmd.Env = append(os.Environ(), "COMP_LINE=slimoci bu", "COMP_POINT=10")
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "build") {
			t.Fatalf("slimoci init answered a completion: %s", out)
		}
	})

	t.Run("bash", func(t *testing.T) {
		bashBin := needShell(t, "bash")
		// The "done" check.
		out, err := exec.Command(bashBin, "-c", "source <("+shellQuote(bin)+" completion bash) && complete -p slimoci").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "complete -F _slimoci slimoci") {
			t.Fatalf("loading the bash script: %v\n%s", err, out)
		}
		sh := startPty(t, dir, bashBin, "--norc", "--noprofile", "-i")
		sh.run(t, "source <("+shellQuote(bin)+" completion bash); bind 'set show-all-if-ambiguous on'")
		sh.complete(t, "slimoci bu\t", "slimoci|build|X|")
		sh.send(t, "slimoci build oci:\t")
		sh.expect(t, "layout/")                              // listed: a directory after oci:
		sh.complete(t, "l\t", "slimoci|build|oci:layout/X|") // oci: once, no space after the directory
		sh.complete(t, "slimoci build --compression=z\t", "slimoci|build|--compression=zstd|X|")
	})

	t.Run("zsh", func(t *testing.T) {
		zsh := needShell(t, "zsh")
		script := filepath.Join(t.TempDir(), "slimoci.zsh")
		runOut(t, bin, script, "completion", "zsh")
		if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n: %v\n%s", err, out)
		}
		home := t.TempDir()
		sh := startPty(t, dir, "env", "HOME="+home, "ZDOTDIR="+home, zsh, "-f", "-i")
		sh.run(t, "autoload -U compinit && compinit -u && source "+shellQuote(script))
		sh.complete(t, "slimoci bu\t", "slimoci|build|X|")
		sh.complete(t, "slimoci build oci:l\t", "slimoci|build|oci:layout/X|")
		sh.complete(t, "slimoci build --compression=z\t", "slimoci|build|--compression=zstd|X|")
	})

	t.Run("fish", func(t *testing.T) {
		fish := needShell(t, "fish")
		script := filepath.Join(t.TempDir(), "slimoci.fish")
		runOut(t, bin, script, "completion", "fish")
		if out, err := exec.Command(fish, "--no-config", "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("fish -n: %v\n%s", err, out)
		}
		// fish's complete -C completes a line as its command line does.
		for line, want := range map[string]string{
			"slimoci bu":                    "build",
			"slimoci build oci:l":           "oci:layout/",
			"slimoci build --compression=z": "--compression=zstd",
		} {
			cmd := exec.Command(fish, "--no-config", "-c", "source "+fishQuote(script)+"; complete -C "+fishQuote(line))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil || !slices.Contains(strings.Fields(string(out)), want) {
				t.Errorf("fish completing %q: want %q, got %v\n%s", line, want, err, out)
			}
		}
	})
}

// runOut runs the binary with args and writes its stdout to path.
func runOut(t *testing.T, bin, path string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("slimoci %s: %v", strings.Join(args, " "), err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ptyShell is an interactive shell on a pseudo-terminal, as a user's.
type ptyShell struct {
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int // how much of out expect has consumed
}

func startPty(t *testing.T, dir string, argv ...string) *ptyShell {
	t.Helper()
	// creack/pty, as the progress tests open theirs.
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	// Wide, so that the shell never wraps a line the test reads.
	if err := pty.Setsize(master, &pty.Winsize{Rows: 50, Cols: 250}); err != nil {
		t.Fatalf("sizing the pty: %v", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TERM=dumb", "PS1=$ ", "PROMPT=$ ", "INPUTRC=/dev/null", "HISTFILE=/dev/null")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", argv[0], err)
	}
	tty.Close()
	sh := &ptyShell{master: master}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			sh.mu.Lock()
			sh.out.Write(buf[:n])
			sh.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
		<-done
	})
	return sh
}

func (sh *ptyShell) send(t *testing.T, keys string) {
	t.Helper()
	if _, err := sh.master.WriteString(keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
	time.Sleep(300 * time.Millisecond) // let the shell complete before the next keys
}

// complete types keys (ending in a Tab), then X, then prints the words of the line the shell made:
// "slimoci bu<Tab>X" prints slimoci|build|X| when a space followed the completion. printf's output is not
// what the shell echoes as it is typed (C-a puts printf before the words).
func (sh *ptyShell) complete(t *testing.T, keys, want string) {
	t.Helper()
	sh.send(t, keys)
	sh.run(t, "X\x01printf '%s|' ")
	sh.expect(t, want)
}

// run types a line and Enter.
func (sh *ptyShell) run(t *testing.T, line string) { t.Helper(); sh.send(t, line+"\r") }

// expect waits for s in what the shell printed since the last expect.
func (sh *ptyShell) expect(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sh.mu.Lock()
		out := sh.out.String()
		sh.mu.Unlock()
		if i := strings.Index(out[sh.seen:], s); i >= 0 {
			sh.seen += i + len(s)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shell never printed %q; it printed:\n%q", s, out[sh.seen:])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The man pages are made from the model (make man runs `slimoci man DIR`) and man renders each.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if code := Main([]string{"man", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("slimoci man: exit %d: %s", code, stderr.String())
	}
	manBin, err := exec.LookPath("man")
	if err != nil {
		t.Skip("man is not installed (testdata/testbed.sh deps installs man-db)")
	}
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("slimoci"))
	if err != nil {
		t.Fatal(err)
	}
	render := func(page string) string {
		t.Helper()
		cmd := exec.Command(manBin, "-l", filepath.Join(dir, page+".1"))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANROFFSEQ=", "LC_ALL=C.UTF-8")
		var out, errs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errs
		if err := cmd.Run(); err != nil || errs.Len() > 0 {
			t.Errorf("man -l %s: %v\n%s", page, err, errs.String()) // groff's warnings too
		}
		return out.String()
	}
	// Everything a reader copies from the page is as typed: hyphens are hyphen-minus.
	flagsIn := func(page, text string, flags []*kong.Flag) {
		t.Helper()
		for _, f := range flags {
			if !f.Hidden && !strings.Contains(text, "--"+f.Name) && !strings.Contains(text, "--[no-]"+f.Name) {
				t.Errorf("%s: no --%s", page, f.Name)
			}
		}
	}
	root := render("slimoci")
	if !strings.Contains(root, "2023-11-14") {
		t.Errorf("slimoci.1 is not dated by SOURCE_DATE_EPOCH:\n%s", root)
	}
	flagsIn("slimoci", root, parser.Model.Flags)
	for _, c := range parser.Model.Children {
		page := "slimoci-" + c.Name
		if c.Hidden {
			if _, err := os.Stat(filepath.Join(dir, page+".1")); err == nil {
				t.Errorf("%s.1 written for a hidden command", page)
			}
			continue
		}
		if !strings.Contains(root, page+"(1)") {
			t.Errorf("slimoci.1 does not name %s(1)", page)
		}
		text := render(page)
		if !strings.Contains(text, "slimoci "+c.Name) || !strings.Contains(text, c.Help[:20]) {
			t.Errorf("%s: no synopsis or description:\n%s", page, text)
		}
		flagsIn(page, text, c.Flags)
		for _, a := range c.Positional {
			if !strings.Contains(text, a.Name) {
				t.Errorf("%s: argument %s not described", page, a.Name)
			}
		}
	}
	if text := render("slimoci-build"); !strings.Contains(text, "--compression=gzip|zstd") || !strings.Contains(text, "--[no-]verify") {
		t.Errorf("slimoci-build.1 does not spell an enum's values or a negatable flag:\n%s", text)
	}
}

func TestRoffEscape(t *testing.T) {
	for in, want := range map[string]string{
		"--push":         `\-\-push`,
		`C:\dir`:         `C:\edir`,
		".slim appended": `\&.slim appended`,
		"'quoted'":       `\&'quoted'`,
		"100% of it":     "100% of it",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}
