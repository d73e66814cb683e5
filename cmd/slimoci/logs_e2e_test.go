package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// A rootless build prints none of libcontainer's logrus lines and no warning for what a rootless unpack
// routinely keeps in the index only; nor does one whose sandbox cannot start (libcontainer then logged
// level=warning msg="unable to get oom kill count": a rootless sandbox has no cgroup): its error alone.
func TestE2ERootlessLogs(t *testing.T) {
	needBed(t)
	if os.Geteuid() != 0 {
		t.Skip("the test runs slimoci as user 65534 and needs root to switch to it")
	}
	sensorBin := buildSensor(t)
	image := "oci:" + bed.Layout("python") + ":latest"
	cmd, home := rootlessCLI(t, sensorBin, "build", "--state-path", "state", "--output", "oci-archive:slim.oci.tar", image)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s %s", err, out.String(), errb.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if line != "" && !plainStageLine.MatchString(line) {
			t.Errorf("stderr holds %q, not a stage line", line)
		}
	}
	rootlessLeftoversExcept(t, home, "slim.oci.tar")

	// A mount point the runtime cannot make (under /proc): the container's init fails.
	cmd, _ = rootlessCLI(t, sensorBin, "profile", "--quiet", "--state-path", "state", "--mount", "/tmp:/proc/x", image)
	errb.Reset()
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil {
		t.Fatal("a sandbox that cannot start ran")
	}
	if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "slimoci: ") || !strings.Contains(lines[0], "/proc/x") {
		t.Errorf("stderr %q, want the error alone", errb.String())
	}
}
