package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// What a hostile image puts in its metadata to drive the terminal of whoever inspects it: retitle the window
// (OSC 0, ended by BEL), clear the screen (CSI 2J), the same with the 8-bit CSI (C1, U+009B), and a carriage
// return that would overwrite the line.
const (
	retitle = "\x1b]0;pwned\x07"
	clear   = "\x1b[2J"
	csi8    = "\u009b2J"
)

// rawControls reports the control characters, other than newline and tab, that s holds.
func rawControls(s string) []rune {
	var found []rune
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			found = append(found, r)
		}
	}
	return found
}

// hostileLayout writes a random image whose labels, env, cmd, entrypoint, author, history and platform
// variant carry terminal escapes.
func hostileLayout(t *testing.T) string {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", "amd64", "v1"+clear
	cf.Author = "mallory" + retitle
	cf.Config = v1.Config{
		User: "app" + clear, Env: []string{"PATH=/usr/bin", "X=" + retitle + clear}, Cmd: []string{"sh", "-c", "echo " + csi8},
		Entrypoint: []string{"/bin/" + clear}, WorkingDir: "/app\r/etc",
		Labels: map[string]string{"title" + retitle: "v" + clear + "\nFAKE: line", "c1": csi8},
	}
	cf.History = []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:" + clear + " in / "},
		{CreatedBy: "/bin/sh -c echo " + retitle + " && \\\n\tcurl " + csi8, Comment: clear},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, img, "v1")
}

// slimoci info on a hostile image prints no raw control, in text or JSON; the values are still there,
// escaped; the --dockerfile file keeps the bytes.
func TestInfoEscapesControls(t *testing.T) {
	dir := hostileLayout(t)
	df := filepath.Join(t.TempDir(), "Dockerfile")
	out, errs, code := runCLI(t, "info", "--dockerfile", df, "oci:"+dir+":v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if c := rawControls(out + errs); len(c) > 0 {
		t.Errorf("raw controls %q reach the terminal:\n%s", string(c), out)
	}
	for _, want := range []string{
		`X=\x1b]0;pwned\a\x1b[2J`, `title\x1b]0;pwned\a=v\x1b[2J\nFAKE: line`, `c1=\u009b2J`, ` mallory\x1b]0;pwned\a`,
		` app\x1b[2J`, ` /app\r/etc`, `linux/amd64/v1\x1b[2J`, `ADD file:\x1b[2J in /`, `RUN echo \x1b]0;pwned\a && \`,
		"\tcurl \\u009b2J",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\nFAKE: line") {
		t.Errorf("a label's newline starts a line of its own:\n%s", out)
	}
	b, err := os.ReadFile(df)
	if err != nil || !strings.Contains(string(b), "echo "+retitle) || !strings.Contains(string(b), "curl "+csi8) {
		t.Errorf("the Dockerfile file does not keep the bytes: %v\n%q", err, b)
	}

	out, errs, code = runCLI(t, "info", "--json", "oci:"+dir+":v1")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errs)
	}
	if c := rawControls(strings.ReplaceAll(out, "\n", "")); len(c) > 0 {
		t.Errorf("--json: raw controls %q reach the terminal:\n%s", string(c), out)
	}
	var info struct {
		Config struct{ Labels map[string]string }
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Config.Labels["c1"] != csi8 || info.Config.Labels["title"+retitle] != "v"+clear+"\nFAKE: line" {
		t.Errorf("--json does not decode to the image's values: %v %q", err, info.Config.Labels)
	}
}

// An error quoting something with controls in it (here, the command line's image name; in life, a
// registry's answer or an app's last line) reaches the terminal escaped, on one line.
func TestErrorEscapesControls(t *testing.T) {
	dir := hostileLayout(t)
	for _, args := range [][]string{
		{"info", "oci:" + filepath.Join(t.TempDir(), "nothing"+retitle+clear+csi8) + ":v1"},
		{"info", "--platform", "linux/arm64/" + clear, "oci:" + dir + ":v1"},
		{"no-such-command" + retitle},
	} {
		out, errs, code := runCLI(t, args...)
		if code == 0 {
			t.Fatalf("%q: exit 0: %s", args, out)
		}
		if c := rawControls(errs); len(c) > 0 {
			t.Errorf("%q: raw controls %q on stderr: %q", args, string(c), errs)
		}
		if !strings.Contains(errs, `\x1b`) {
			t.Errorf("%q: stderr %q does not show the escape", args, errs)
		}
	}
}
