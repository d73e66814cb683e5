package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimoci/slimoci/internal/testbed"
	"github.com/slimoci/slimoci/sensor"
)

// timingFile is what a sample may or may not load depending on how fast it runs, whichever the sensor:
// glibc loads its unwinder, libgcc_s, when a thread ends in pthread_exit, as CPython's daemon threads do
// when they are still running at the interpreter's exit (seen in ptrace and in notify runs alike).
// The JVM's attach files are named for its pid, which differs between runs: /tmp/.java_pidN and
// /tmp/hsperfdata_USER/N.
func timingFile(p string) bool {
	base := filepath.Base(p)
	return strings.HasPrefix(base, "libgcc_s.so") || strings.HasPrefix(base, ".java_pid") ||
		strings.HasPrefix(filepath.Base(filepath.Dir(p)), "hsperfdata_")
}

// timingSyscalls are what an app may call or not depending on timing, whichever the sensor: ruby's thread
// scheduler yields (sched_yield) when its threads contend.
var timingSyscalls = []string{"sched_yield"}

// Both sensor backends give every test-bed sample the same record: observed as `slimoci profile` does,
// every syscall counted, the files, the programs and the syscall set agree.
func TestE2ESensorBackendsSameRecord(t *testing.T) {
	if !sensor.NotifySupported() {
		t.Skip("the kernel has no seccomp user notification with CONTINUE (Linux 5.5)")
	}
	sensorBin := buildSensor(t)
	for _, sample := range testbed.Samples {
		t.Run(sample, func(t *testing.T) {
			tree := unpackedTree(t, sample)
			cfg := tree.Config.Config
			records := map[string]*sensor.Record{}
			for _, backend := range []string{sensor.SensorPtrace, sensor.SensorNotify} {
				state := filepath.Join(t.TempDir(), "sandbox")
				var out syncBuffer
				obs, err := Observe(context.Background(), tree.Dir, Spec{
					Args: append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Cwd: cfg.WorkingDir,
					Stdout: &out, Stderr: &out, Sensor: sensorBin, AllSyscalls: true, SensorBackend: backend,
				}, Plan{HTTP: []HTTPCommand{{Method: "GET", Resource: "/"}}, Ports: []int{8080}, ProbeTimeout: 60 * time.Second},
					&Options{StateDir: state, WorkRoot: filepath.Dir(filepath.Dir(state))})
				if err != nil {
					t.Fatalf("%s: %v\n%s", backend, err, out.String())
				}
				if len(obs.Probes) != 1 || obs.Probes[0].Status != 200 || len(obs.Record.Files) < 50 || len(obs.Record.Syscalls) < 20 {
					t.Fatalf("%s: probes %+v, %d files, %d syscalls\n%s", backend, obs.Probes, len(obs.Record.Files), len(obs.Record.Syscalls), out.String())
				}
				records[backend] = obs.Record
			}
			if diffs := testbed.RecordDiff(records[sensor.SensorPtrace], records[sensor.SensorNotify], timingFile, timingSyscalls); len(diffs) > 0 {
				t.Errorf("ptrace and notify records differ:\n%s", strings.Join(diffs, "\n"))
			}
		})
	}
}
