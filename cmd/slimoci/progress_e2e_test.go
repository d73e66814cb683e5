package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// `slimoci build` as a user runs it, as a process of its own: on a pseudo-terminal it draws progress;
// piped, it prints stage lines and nothing else on stderr; with --quiet nothing, and a failing build only
// its error.
func TestE2EBuildProgress(t *testing.T) {
	sensorBin := rootSandbox(t, "these builds use the root sandbox; the rootless one is checked for logs in TestE2ERootlessLogs")
	src := "oci:" + bed.Layout("python") + ":latest"
	build := func(t *testing.T, stderr io.Writer, extra ...string) (*exec.Cmd, *bytes.Buffer) {
		dir := t.TempDir()
		args := append([]string{"build", "--sensor", sensorBin, "--state-path", filepath.Join(dir, "state"),
			"--output", "oci-archive:" + filepath.Join(dir, "slim.oci.tar")}, extra...)
		cmd := exec.Command(os.Args[0], append(args, src)...)
		cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, stderr
		return cmd, &stdout
	}

	t.Run("terminal", func(t *testing.T) {
		tty, screen := openTerminal(t)
		cmd, stdout := build(t, tty)
		err := cmd.Run()
		out := screen()
		if err != nil {
			t.Fatalf("%v: %s\n%q", err, stdout, out)
		}
		for _, want := range []string{"\x1b[J", "unpack ", "observe ", "emit ", "verify", "done: "} {
			if !strings.Contains(out, want) {
				t.Errorf("the terminal did not show %q:\n%q", want, out)
			}
		}
		if !strings.Contains(out, "[") && !strings.ContainsAny(out, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") {
			t.Errorf("neither a bar nor a spinner:\n%q", out)
		}
	})

	t.Run("piped", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd, stdout := build(t, &stderr)
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %s %s", err, stdout, stderr.String())
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		stages := map[string]bool{}
		for _, l := range lines {
			m := plainStageLine.FindStringSubmatch(l)
			if m == nil || strings.Contains(l, "\x1b") {
				t.Errorf("not a stage line: %q", l)
				continue
			}
			stages[m[1]] = true
		}
		for _, s := range []string{"unpack", "observe", "emit", "verify"} {
			if !stages[s] {
				t.Errorf("no %s line in:\n%s", s, stderr.String())
			}
		}
		if !strings.Contains(stderr.String(), "observe: probe GET :8080/: http 200") {
			t.Errorf("the probe's answer is not a line of its own:\n%s", stderr.String())
		}
	})

	t.Run("quiet", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd, stdout := build(t, &stderr, "--quiet")
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %s %s", err, stdout, stderr.String())
		}
		if stderr.Len() > 0 {
			t.Errorf("--quiet printed %q", stderr.String())
		}
		cmd = exec.Command(os.Args[0], "build", "--quiet", "--sensor", sensorBin, "--state-path", filepath.Join(t.TempDir(), "s"), "oci:"+filepath.Join(t.TempDir(), "none")+":latest")
		cmd.Env = append(os.Environ(), "SLIMOCI_TEST_AS_CLI=1")
		stderr.Reset()
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			t.Fatal("a build of an image that does not exist succeeded")
		}
		if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "slimoci: ") {
			t.Errorf("--quiet failing printed %q, want its error alone", stderr.String())
		}
	})
}
