package runner

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
)

// Every test-bed sample observed as `slimoci profile` does: its ENTRYPOINT under the sensor, GET / on its
// exposed port. The record must hold the interpreter binary, its ELF interpreter, the C library it loaded,
// the app's source, the symlinks on those paths; the probe gets its 200; the tree is unchanged; nothing is
// left behind.
func TestE2EObserveSamples(t *testing.T) {
	sensorBin := buildSensor(t)
	sources := map[string]string{"node": "/app/app.js", "python": "/app/app.py", "ruby": "/app/app.rb", "java": "/app/app.jar"}
	for _, sample := range testbed.Samples {
		t.Run(sample, func(t *testing.T) {
			tree := unpackedTree(t, sample)
			before := fingerprint(t, tree.Dir)
			cfg := tree.Config.Config
			state := filepath.Join(t.TempDir(), "sandbox")
			var out syncBuffer
			obs, err := Observe(context.Background(), tree.Dir, Spec{
				Args: append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir,
				Stdout: &out, Stderr: &out, Sensor: sensorBin, AllSyscalls: true,
			}, Plan{HTTP: []HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 60 * time.Second},
				&Options{StateDir: state, WorkRoot: filepath.Dir(filepath.Dir(state))})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if len(obs.Probes) != 1 || obs.Probes[0].Status != 200 || obs.Probes[0].Size == 0 {
				t.Errorf("probes %+v\n%s", obs.Probes, out.String())
			}
			if obs.ContinuedAfter != AfterProbe || obs.AppExited {
				t.Errorf("continued after %q, exited by itself %v", obs.ContinuedAfter, obs.AppExited)
			}
			files := obs.Record.Files
			has := func(p, op string) {
				t.Helper()
				if !slices.Contains(files[p], op) {
					t.Errorf("%s recorded as %v, want %s", p, files[p], op)
				}
			}
			if len(obs.Record.Execs) == 0 {
				t.Fatalf("no exec recorded")
			}
			bin := obs.Record.Execs[0].Path // resolved by the kernel: /proc/PID/exe
			if !slices.Contains(files[bin], "exec") && !slices.Contains(files[bin], "resolved") {
				t.Errorf("the interpreter binary %s recorded as %v", bin, files[bin])
			}
			// The name the image uses for it, a symlink chain in most (/usr/bin/java -> /etc/alternatives/java
			// -> ...), recorded as a link with every link after it.
			name := "/usr/bin/" + cfg.Entrypoint[0]
			has(name, "exec")
			for p := name; ; {
				fi, err := os.Lstat(filepath.Join(tree.Dir, p))
				if err != nil || fi.Mode()&os.ModeSymlink == 0 {
					break
				}
				has(p, "link")
				target, _ := os.Readlink(filepath.Join(tree.Dir, p))
				if !filepath.IsAbs(target) {
					target = filepath.Join(filepath.Dir(p), target)
				}
				p = target
			}
			has("/lib64/ld-linux-x86-64.so.2", "interp")
			has("/lib64", "link")
			has("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "resolved")
			var libc bool
			for p, ops := range files {
				if strings.HasSuffix(p, "/libc.so.6") && slices.Contains(ops, "open") {
					libc = true
				}
			}
			if !libc {
				t.Errorf("libc.so.6 not recorded as opened")
			}
			has(sources[sample], "open")
			for _, p := range []string{"/etc/hosts", "/etc/resolv.conf"} {
				if _, ok := files[p]; ok {
					t.Errorf("the runtime's %s counts as an image file", p)
				}
			}
			if after := fingerprint(t, tree.Dir); after != before {
				t.Errorf("the unpacked tree changed")
			}
			if l := leftovers(t, state, ""); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
		})
	}
}
