package runner

import (
	"strings"
	"testing"
)

func TestContinueAfterModes(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"probe":                "probe",
		"host-exec":            "host-exec",
		"probe&exec":           "probe|exec",
		"host-exec&probe":      "host-exec|probe",
		"exec&host-exec&enter": "exec|host-exec|enter",
		"signal&30":            "signal|30",
		"probe&app-exit":       "probe|app-exit",
		"exec&timeout":         "exec|timeout",
	} {
		modes, err := continueModes(in)
		if err != nil || strings.Join(modes, "|") != want {
			t.Errorf("%q: %q %v, want %q", in, modes, err, want)
		}
	}
	for in, want := range map[string]string{
		"later":            `"later" is not a mode`,
		"probe&later":      `"later" is not a mode`,
		"0":                `"0" is not a mode`,
		"probe&-5":         `"-5" is not a mode`,
		"1.5":              `"1.5" is not a mode`,
		"probe&":           "an empty mode",
		"probe&&exec":      "an empty mode",
		"&probe":           "an empty mode",
		"probe&probe":      "probe twice",
		"exec&probe&exec":  "exec twice",
		"app-exit&probe":   "app-exit must come last (nothing can follow it: the app has exited)",
		"timeout&exec":     "timeout must come last",
		"timeout&app-exit": "timeout must come last",
		"container-probe":  "Compose",
		"probe|exec":       "is not a mode",
		"Probe":            "is not a mode",
	} {
		if err := ParseContinueAfter(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--continue-after") {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

func TestContinueSteps(t *testing.T) {
	for in, want := range map[string]string{
		// A single mode: slimoci's order, then the wait.
		"probe":     "probe exec host-exec",
		"exec":      "probe exec host-exec",
		"host-exec": "probe exec host-exec",
		"enter":     "probe exec host-exec enter",
		"app-exit":  "probe exec host-exec app-exit",
		"30":        "probe exec host-exec 30",
		// Combinations: in the order given; the HTTP probes first when not named, another step right after
		// the one before it in slimoci's order.
		"probe&exec":                    "probe exec host-exec",
		"host-exec&probe":               "host-exec probe exec",
		"exec&probe":                    "exec host-exec probe",
		"host-exec&exec":                "probe host-exec exec",
		"exec&enter":                    "probe exec host-exec enter",
		"enter&host-exec":               "probe exec enter host-exec",
		"probe&enter&exec":              "probe enter exec host-exec",
		"signal&probe&10":               "signal probe exec host-exec 10",
		"exec&signal&host-exec&timeout": "probe exec signal host-exec timeout",
	} {
		modes, err := continueModes(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(continueSteps(modes), " "); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
	modes, _ := continueModes("probe&30&exec")
	if got := continuedAfter(modes); got != "probe&30s&exec" {
		t.Errorf("continuedAfter %q", got)
	}
}
