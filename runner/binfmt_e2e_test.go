package runner

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/sensor"
)

// arm64Sample is the test bed's python sample built for linux/arm64 on an arm64 bookworm base
// (testdata/testbed.sh; testbed.Arm64).
const arm64Sample = "python-arm64"

// foreignTree is the arm64 sample, unpacked, and the emulator this host runs it with.
func foreignTree(t *testing.T) (string, *Emulator) {
	t.Helper()
	emu, err := CheckEmulation(platform("linux/arm64"))
	switch {
	case errors.Is(err, ErrNoEmulator):
		t.Skipf("%v (make deps registers qemu-user-static's handlers)", err)
	case err != nil:
		t.Fatal(err)
	case emu == nil:
		t.Skip("linux/arm64 runs natively here: nothing is emulated")
	}
	if bed, _ := testbed.Find(); bed != nil {
		if _, err := os.Stat(bed.Layout(arm64Sample)); err != nil {
			t.Skipf("the test bed has no %s (testdata/testbed.sh builds it): %v", arm64Sample, err)
		}
	}
	return unpacked(t, arm64Sample), emu
}

// sandboxOptions puts a sandbox's state in the test's temporary directory.
func sandboxOptions(t *testing.T) *Options {
	state := filepath.Join(t.TempDir(), "sandbox")
	return &Options{StateDir: state, WorkRoot: filepath.Dir(filepath.Dir(state))}
}

// emulatorOnly lists what in rec is the emulator's, not the guest's: its interpreter (qemu), its sysroots,
// x86-64 files.
func emulatorOnly(rec *sensor.Record) []string {
	var out []string
	for p, ops := range rec.Files {
		if strings.Contains(p, "qemu") || strings.HasPrefix(p, "/usr/gnemul") || strings.Contains(p, "x86_64") || strings.Contains(p, "x86-64") {
			out = append(out, p+" "+strings.Join(ops, ","))
		}
	}
	for _, e := range rec.Execs {
		if strings.Contains(e.Path, "qemu") || len(e.Argv) > 0 && strings.Contains(e.Argv[0], "qemu") {
			out = append(out, "exec "+e.Path+" "+strings.Join(e.Argv, " "))
		}
	}
	slices.Sort(out)
	return out
}

// An arm64 shell and its dynamic programs in the sandbox under qemu-user, with each backend: the record is
// the guest's (its programs, their ELF interpreter and libraries, with the argv it gave them) and holds
// nothing of the emulator's. Run without telling the sensor, the same record has the emulator's paths:
// what Spec.Emulator takes out.
func TestE2EEmulatedRecordIsTheGuests(t *testing.T) {
	tree, emu := foreignTree(t)
	sensorBin := buildSensor(t)
	const script = "cat /etc/hostname; ls /"
	run := func(t *testing.T, backend string, emu *Emulator) *sensor.Record {
		t.Helper()
		var out syncBuffer
		s, err := Start(context.Background(), tree, Spec{
			Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Stdout: &out, Stderr: &out, Sensor: sensorBin, SensorBackend: backend, Emulator: emu,
		}, sandboxOptions(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code, err := s.Wait(ctx)
		if err != nil || code != 0 || !strings.HasPrefix(out.String(), "slimoci\n") || !strings.Contains(out.String(), "\nusr\n") {
			t.Fatalf("exit %d, %v, output %q", code, err, out.String())
		}
		rec, err := s.Record()
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	for _, backend := range []string{sensor.SensorPtrace, sensor.SensorNotify} {
		t.Run(backend, func(t *testing.T) {
			rec := run(t, backend, emu)
			for p, op := range map[string]string{
				"/usr/bin/sh": "exec", "/usr/bin/dash": "exec", "/usr/bin/cat": "exec", "/usr/bin/ls": "exec",
				"/lib/ld-linux-aarch64.so.1": "open", "/etc/hostname": "open",
				"/lib/aarch64-linux-gnu/libc.so.6": "open", "/lib/aarch64-linux-gnu/libselinux.so.1": "open",
			} {
				if !slices.Contains(rec.Files[p], op) {
					t.Errorf("%s recorded as %v, want %s", p, rec.Files[p], op)
				}
			}
			if !slices.Contains(rec.Files["/lib/ld-linux-aarch64.so.1"], "interp") {
				t.Errorf("ld.so is not the programs' interpreter: %v", rec.Files["/lib/ld-linux-aarch64.so.1"])
			}
			var argvs []string
			for _, e := range rec.Execs {
				argvs = append(argvs, e.Path+": "+strings.Join(e.Argv, " "))
			}
			for _, want := range []string{"/usr/bin/dash: sh -c " + script, "/usr/bin/cat: cat /etc/hostname", "/usr/bin/ls: ls /"} {
				if !slices.Contains(argvs, want) {
					t.Errorf("execs %q, want %q among them", argvs, want)
				}
			}
			if bad := emulatorOnly(rec); len(bad) > 0 {
				t.Errorf("the emulator's own in the record:\n%s", strings.Join(bad, "\n"))
			}
		})
	}
	t.Run("not told", func(t *testing.T) {
		raw := emulatorOnly(run(t, sensor.SensorNotify, nil))
		if !slices.ContainsFunc(raw, func(s string) bool { return strings.HasPrefix(s, "/etc/qemu-binfmt/aarch64/") }) ||
			!slices.ContainsFunc(raw, func(s string) bool { return strings.HasPrefix(s, "exec ") }) {
			t.Errorf("the raw record has no sysroot lookup or no qemu exec (has qemu-user changed? measure again):\n%s", strings.Join(raw, "\n"))
		}
	})
}

// The arm64 python sample observed as slimoci observes an app, under emulation, and its amd64 build
// natively: the probe answers, the record is the guest's. The time from the sandbox's start to the first
// answer of each is logged: their ratio is what the emulated plan's time bounds are scaled by
// (Plan.Scaled, Spec.Scaled).
func TestE2EEmulatedAppObserved(t *testing.T) {
	tree, emu := foreignTree(t)
	native := unpackedTree(t, "python")
	sensorBin := buildSensor(t)
	observe := func(t *testing.T, dir string, emu *Emulator) *Observation {
		t.Helper()
		cfg := native.Config.Config // the two builds run the same app the same way
		var out syncBuffer
		obs, err := Observe(context.Background(), dir, Spec{
			Args: append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir,
			Stdout: &out, Stderr: &out, Sensor: sensorBin, Emulator: emu, AllSyscalls: true,
		}, Plan{HTTP: []HTTPCommand{{Method: http.MethodGet, Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 2 * time.Minute},
			sandboxOptions(t))
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if len(obs.Probes) != 1 || obs.Probes[0].Status != 200 {
			t.Fatalf("probes %+v\n%s", obs.Probes, out.String())
		}
		return obs
	}
	emulated := observe(t, tree, emu)
	rec := emulated.Record
	if !slices.Contains(rec.Files["/usr/bin/python3"], "exec") || !slices.Contains(rec.Files["/lib/ld-linux-aarch64.so.1"], "open") ||
		!slices.Contains(rec.Files["/app/app.py"], "open") {
		t.Errorf("python3 %v, ld.so %v, app.py %v", rec.Files["/usr/bin/python3"], rec.Files["/lib/ld-linux-aarch64.so.1"], rec.Files["/app/app.py"])
	}
	if bad := emulatorOnly(rec); len(bad) > 0 {
		t.Errorf("the emulator's own in the record:\n%s", strings.Join(bad, "\n"))
	}
	nat := observe(t, native.Dir, nil)
	t.Logf("first answer: native %v, emulated %v (%.1fx)", nat.FirstAnswer, emulated.FirstAnswer, float64(emulated.FirstAnswer)/float64(nat.FirstAnswer))
}
