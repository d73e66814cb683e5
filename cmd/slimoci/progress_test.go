package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/slimoci/slimoci"
)

// plainStageLine is a line the renderer prints off a terminal.
var plainStageLine = regexp.MustCompile(`^(unpack|observe|closure|emit|verify|push)( \(round \d+\))?: `)

// jobEvents is a build's events as the library sends them: an unpack with bytes of a known total and
// files, an observation waiting for its app, then probes answering (one quoting a hostile app), a verify
// round, a push.
func jobEvents() []slimoci.Event {
	var evs []slimoci.Event
	add := func(e ...slimoci.Event) { evs = append(evs, e...) }
	add(slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Started, Message: "oci:app:latest"})
	for i := int64(1); i <= 4; i++ {
		add(slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Progressed, Complete: i * 11_300_000, Total: 45_200_000, Unit: "bytes", Files: i * 2558})
	}
	add(slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Finished, Complete: 10234, Unit: "files", Elapsed: 2100 * time.Millisecond},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Started},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "sandbox started"},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "waiting for the app on :8080", Waiting: true},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "waiting for the app on :8080 (2s)", Waiting: true},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "probe GET :8080/: http 200, 12 bytes"},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "probe GET :8080/x: status 500 \x1b]0;pwned\x07\x1b[2J"},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Finished, Elapsed: 5200 * time.Millisecond},
		slimoci.Event{Stage: slimoci.StageEmit, Kind: slimoci.Started},
		slimoci.Event{Stage: slimoci.StageEmit, Kind: slimoci.Progressed, Files: 150, TotalFiles: 300},
		slimoci.Event{Stage: slimoci.StageEmit, Kind: slimoci.Progressed, Files: 300, TotalFiles: 300},
		slimoci.Event{Stage: slimoci.StageEmit, Kind: slimoci.Finished, Elapsed: 400 * time.Millisecond},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Started, Round: 1},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Round: 1, Message: "probe GET :8080/: http 200, 12 bytes"},
		slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Finished, Round: 1, Elapsed: 1500 * time.Millisecond},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Started},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Progressed, Message: "registry.test/app:slim"},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Progressed, Complete: 6_000_000, Total: 12_000_000, Unit: "bytes", Message: "registry.test/app:slim"},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Progressed, Complete: 12_000_000, Total: 12_000_000, Unit: "bytes", Message: "registry.test/app:slim"},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Progressed, Message: "oci:out:slim"},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Progressed, Complete: 12_000_000, Total: 12_000_000, Unit: "bytes", Message: "oci:out:slim"},
		slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Finished, Elapsed: 300 * time.Millisecond},
	)
	return evs
}

// render feeds events to renderProgress and waits for it, calling pause (when set) after each.
func render(events []slimoci.Event, stderr io.Writer, quiet bool, pause func(slimoci.Event)) {
	ch := make(chan slimoci.Event) // unbuffered: the job waits for the renderer, as the library's does
	_, wait := renderProgress(ch, stderr, quiet)
	for _, e := range events {
		ch <- e
		if pause != nil {
			pause(e)
		}
	}
	close(ch)
	wait()
}

// Not on a terminal: one line per stage as it finishes and one per thing that happened, escaped; nothing
// for what the job waits for.
func TestRenderProgressLines(t *testing.T) {
	var out bytes.Buffer
	render(jobEvents(), &out, false, nil)
	want := `unpack: oci:app:latest, 45.2 MB, 10234 files, 2.1s
observe: sandbox started
observe: probe GET :8080/: http 200, 12 bytes
observe: probe GET :8080/x: status 500 \x1b]0;pwned\a\x1b[2J
observe: 5.2s
emit: 300 files, 0.4s
observe (round 1): probe GET :8080/: http 200, 12 bytes
observe (round 1): 1.5s
push: registry.test/app:slim
push: oci:out:slim
push: 24.0 MB, 0.3s
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, l := range strings.Split(strings.TrimSuffix(want, "\n"), "\n") {
		if !plainStageLine.MatchString(l) {
			t.Errorf("plainStageLine does not match %q", l)
		}
	}
}

// Several platforms: each platform's stages are lines of their own, labelled with the platform (escaped).
func TestRenderProgressPlatforms(t *testing.T) {
	var out bytes.Buffer
	var evs []slimoci.Event
	for _, p := range []string{"linux/amd64", "linux/arm64/v8\x1b[2J"} {
		evs = append(evs,
			slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Started, Message: "oci:app:latest", Platform: p},
			slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Started, Platform: p},
			slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Finished, Complete: 10, Unit: "files", Elapsed: time.Second, Platform: p},
			slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "probe GET :8080/: http 200, 12 bytes", Platform: p},
			slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Finished, Elapsed: 5 * time.Second, Platform: p})
	}
	evs = append(evs, slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Started}, slimoci.Event{Stage: slimoci.StagePush, Kind: slimoci.Finished, Elapsed: time.Second})
	render(evs, &out, false, nil)
	want := `linux/amd64 unpack: oci:app:latest, 10 files, 1.0s
linux/amd64 observe: probe GET :8080/: http 200, 12 bytes
linux/amd64 observe: 5.0s
linux/arm64/v8\x1b[2J unpack: oci:app:latest, 10 files, 1.0s
linux/arm64/v8\x1b[2J observe: probe GET :8080/: http 200, 12 bytes
linux/arm64/v8\x1b[2J observe: 5.0s
push: 1.0s
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

// --quiet: nothing at all, and the events are still received (the job never blocks on them).
func TestRenderProgressQuiet(t *testing.T) {
	var out bytes.Buffer
	evs := jobEvents()
	for range 1000 {
		evs = append(evs, slimoci.Event{Stage: slimoci.StageObserve, Kind: slimoci.Progressed, Message: "probe GET :8080/: http 200"})
	}
	done := make(chan struct{})
	go func() {
		render(evs, &out, true, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the quiet renderer does not take the events")
	}
	if out.Len() > 0 {
		t.Errorf("quiet printed %q", out.String())
	}
}

// On a terminal (a real pseudo-terminal): lines redrawn in place, a bar with counts, rate and ETA for a
// known total, a spinner with what the job waits for, what happened printed above the bars, each stage's
// summary once done; the hostile app's escapes reach the terminal escaped.
func TestRenderProgressTerminal(t *testing.T) {
	tty, screen := openTerminal(t)
	// Long enough between events for mpb (100 ms refresh) to draw each state.
	pause := func(e slimoci.Event) {
		if e.Kind != slimoci.Finished {
			time.Sleep(250 * time.Millisecond)
		}
	}
	render(jobEvents(), tty, false, pause)
	out := screen()
	for _, want := range []string{
		"\x1b[J",                       // lines redrawn in place (cursor up, erase down)
		"unpack ",                      // the stage's name
		"11.3 MB / 45.2 MB",            // bytes of a known total
		"MB/s",                         // a rate
		"ETA ",                         // and a time left
		"[",                            // a bar
		"5116 files",                   // the count the bar does not draw
		"waiting for the app on :8080", // what the observation waits for, beside a spinner
		"observe: probe GET :8080/: http 200, 12 bytes\r\n", // what happened, above the bars
		"150 / 300 files", // a bar of files
		"done: oci:app:latest, 45.2 MB, 10234 files, 2.1s",
		"done: 24.0 MB, 0.3s",
		"push: registry.test/app:slim\r\n", // the destination, above the bars
		`\x1b]0;pwned\a`,                   // the app's escapes, escaped
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal did not show %q; it got:\n%q", want, out)
		}
	}
	spinner := false
	for _, f := range []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"} {
		spinner = spinner || strings.Contains(out, f)
	}
	if !spinner {
		t.Errorf("no spinner frame drawn:\n%q", out)
	}
	if strings.Contains(out, "\x1b]0;pwned") {
		t.Errorf("the app's escape reached the terminal raw")
	}
}

// Log records written while bars are drawn go above them, whole; after the job, straight to the terminal.
func TestRenderProgressLogs(t *testing.T) {
	var out bytes.Buffer
	ch := make(chan slimoci.Event)
	logs, wait := renderProgress(ch, &out, false)
	if logs != io.Writer(&out) {
		t.Errorf("not on a terminal, logs go to %T, not stderr itself", logs)
	}
	close(ch)
	wait()

	tty, _ := openTerminal(t)
	ch = make(chan slimoci.Event)
	logs, wait = renderProgress(ch, tty, false)
	if logs == io.Writer(tty) {
		t.Fatal("on a terminal, logs are written over the bars")
	}
	ch <- slimoci.Event{Stage: slimoci.StageUnpack, Kind: slimoci.Started}
	if _, err := io.WriteString(logs, "level=WARN msg=x\n"); err != nil {
		t.Errorf("logging above the bars: %v", err)
	}
	close(ch)
	wait()
	if _, err := io.WriteString(logs, "level=WARN msg=after\n"); err != nil {
		t.Errorf("logging after the job: %v", err)
	}
}

// openTerminal opens a pseudo-terminal of 160 columns; screen closes the terminal's end a program writes to
// (the test's tty: a child process holds its own copy) and returns all that was written to it.
func openTerminal(t *testing.T) (tty *os.File, screen func() string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&out, ptmx) // until every copy of tty is closed (EIO)
	}()
	return tty, func() string {
		tty.Close()
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal's output did not end")
		}
		return out.String()
	}
}
