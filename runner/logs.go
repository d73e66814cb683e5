package runner

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/sirupsen/logrus"
)

// LibcontainerLogs sends libcontainer's logs to l at debug level, or nowhere when l is nil. libcontainer logs
// through logrus' standard logger, which is the process's, to stderr by default, and at warning level for
// what is routine here ("unable to get oom kill count" after every rootless run, which has no cgroup): a
// debugging aid for slimoci's developers, not the user's business. Call it once, before the first sandbox
// (the command line does, with its logger when --debug is given); it replaces what logrus had.
func LibcontainerLogs(l *slog.Logger) {
	std := logrus.StandardLogger()
	std.SetOutput(io.Discard)
	std.ReplaceHooks(logrus.LevelHooks{})
	if l == nil || !l.Enabled(context.Background(), slog.LevelDebug) {
		// Nothing is wanted: logrus then formats nothing either.
		std.SetLevel(logrus.PanicLevel)
		return
	}
	std.SetLevel(logrus.DebugLevel)
	std.AddHook(slogHook{l})
}

// slogHook turns a logrus entry into a debug record of l's, its level as libcontainer=warning and its fields
// as attributes.
type slogHook struct{ l *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	attrs := make([]slog.Attr, 0, len(e.Data)+1)
	attrs = append(attrs, slog.String("libcontainer", e.Level.String()))
	for _, k := range slices.Sorted(maps.Keys(e.Data)) {
		v := e.Data[k]
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	h.l.LogAttrs(context.Background(), slog.LevelDebug, e.Message, attrs...)
	return nil
}
