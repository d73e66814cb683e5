package runner

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// libcontainer's logrus lines go nowhere unless slimoci debugs, and then through its logger at debug level.
func TestLibcontainerLogs(t *testing.T) {
	std := logrus.StandardLogger()
	out, level := std.Out, std.GetLevel()
	t.Cleanup(func() {
		std.SetOutput(out)
		std.SetLevel(level)
		std.ReplaceHooks(logrus.LevelHooks{})
	})
	var stderr bytes.Buffer
	std.SetOutput(&stderr) // where logrus writes by default, stderr, stands for the user's terminal

	for _, tc := range []struct {
		name   string
		logger func(w io.Writer) *slog.Logger
		want   string
	}{
		{"no logger", func(io.Writer) *slog.Logger { return nil }, ""},
		{"without --debug", func(w io.Writer) *slog.Logger {
			return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}, ""},
		{"--debug", func(w io.Writer) *slog.Logger {
			return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}, `level=DEBUG msg="unable to get oom kill count" libcontainer=warning error="no cgroup"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr.Reset()
			var logs bytes.Buffer
			LibcontainerLogs(tc.logger(&logs))
			logrus.WithError(errors.New("no cgroup")).Warn("unable to get oom kill count")
			if stderr.Len() > 0 {
				t.Errorf("logrus wrote %q", stderr.String())
			}
			if got := strings.TrimSpace(logs.String()); !strings.HasSuffix(got, tc.want) || (tc.want == "") != (got == "") {
				t.Errorf("slimoci's log %q, want it to end in %q", got, tc.want)
			}
		})
	}
}
