package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/slimoci/slimoci"
	"github.com/slimoci/slimoci/internal/termsafe"
)

// renderProgress draws a job's events on stderr until the job closes events; wait returns once the last is
// drawn. On a terminal each stage is a line of its own, redrawn as it goes (vbauerster/mpb): a bar with its
// counts, rate and ETA when its total is known, a spinner with what it does or waits for otherwise, and the
// stage's summary once it is done; what happened during a stage (a probe's answer) is printed above the
// bars. Not on a terminal (a pipe, a file, a CI log): one line per stage when it finishes ("unpack:
// oci:app:latest, 45.2 MB, 10234 files, 2.1s") and one per thing that happened, none for what the job waits
// for. quiet draws nothing; events are received all the same, so the job never blocks on them.
//
// logs is where the caller's log records should go while the job runs: on a terminal, printed above the
// bars (a record written straight to the terminal would be drawn over); elsewhere stderr itself. Every
// message is escaped (termsafe): events quote the image and the app.
func renderProgress(events <-chan slimoci.Event, stderr io.Writer, quiet bool) (logs io.Writer, wait func()) {
	done := make(chan struct{})
	var r renderer
	switch {
	case quiet:
		r = discardRenderer{}
	case isTerminal(stderr):
		r = newBarRenderer(stderr)
	default:
		r = &lineRenderer{w: stderr, stages: map[stageKey]*stageState{}}
	}
	go func() {
		defer close(done)
		for e := range events {
			r.event(e)
		}
		r.close()
	}()
	logs = stderr
	if lw := r.logs(); lw != nil {
		logs = lw
	}
	return logs, func() { <-done }
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type renderer interface {
	event(slimoci.Event)
	close()
	logs() io.Writer
}

type discardRenderer struct{}

func (discardRenderer) event(slimoci.Event) {}
func (discardRenderer) close()              {}
func (discardRenderer) logs() io.Writer     { return nil }

// stageKey names a stage's line: the fat image's observe and the first verify round's are two, and so are
// two platforms' unpacks when build slims several.
type stageKey struct {
	stage    slimoci.Stage
	round    int
	platform string
}

func keyOf(e slimoci.Event) stageKey { return stageKey{e.Stage, e.Round, e.Platform} }

func (k stageKey) label() string {
	l := string(k.stage)
	if k.round > 0 {
		l = fmt.Sprintf("%s (round %d)", k.stage, k.round)
	}
	if k.platform != "" {
		l = termsafe.String(k.platform) + " " + l
	}
	return l
}

// count is a stage's progress in one unit.
type count struct{ complete, total int64 }

// stageState is what the events said of a stage so far.
type stageState struct {
	key stageKey
	// subject is what the stage works on (its Started message: the image, a destination), message what it
	// last said it does or waits for; both escaped.
	subject, message string
	bytes, files     *count
	// counting is what the byte counts count (a destination: push's events name it), earlier the bytes of
	// those counted before.
	counting string
	earlier  int64
	elapsed  time.Duration
	done     bool
}

// update takes e's counts and message into s.
func (s *stageState) update(e slimoci.Event) {
	msg := termsafe.String(e.Message)
	switch e.Kind {
	case slimoci.Started:
		s.subject = msg
	case slimoci.Finished:
		s.done, s.elapsed = true, e.Elapsed
		if msg != "" {
			s.subject = msg
		}
	default:
		s.message = msg
	}
	switch e.Unit {
	case "bytes":
		if e.Message != s.counting && s.bytes != nil {
			// The next destination: its bytes start again from 0.
			s.earlier += s.bytes.complete
			s.bytes = nil
		}
		s.counting = e.Message
		s.bytes = s.bytes.update(e.Kind, e.Complete, e.Total)
	case "files":
		s.files = s.files.update(e.Kind, e.Complete, e.Total)
	}
	if e.Files > 0 || e.TotalFiles > 0 {
		// The entries a stage counts beside its bytes.
		s.files = s.files.update(e.Kind, e.Files, e.TotalFiles)
	}
}

// update takes an event's counts into c (nil: a new count): a Finished event's, when it has any.
func (c *count) update(kind slimoci.EventKind, complete, total int64) *count {
	if c == nil {
		c = &count{}
	}
	if kind == slimoci.Progressed || complete > 0 {
		c.complete = complete
	}
	if total > 0 {
		c.total = total
	}
	return c
}

// summary is the stage's line once it is done: "oci:app:latest, 45.2 MB, 10234 files, 2.1s".
func (s *stageState) summary() string {
	var parts []string
	if s.subject != "" {
		parts = append(parts, s.subject)
	}
	if s.bytes != nil {
		parts = append(parts, humanBytes(s.earlier+s.bytes.complete))
	}
	if s.files != nil {
		parts = append(parts, fmt.Sprintf("%d files", s.files.complete))
	}
	parts = append(parts, fmt.Sprintf("%.1fs", s.elapsed.Seconds()))
	return strings.Join(parts, ", ")
}

func humanBytes(n int64) string { return fmt.Sprintf("% .1f", decor.SizeB1000(n)) }

// happened reports whether e says something that happened (a probe's answer, the next destination) rather
// than what the stage waits for (Waiting) or how far it is (an event with counts: its message names what
// they count).
func happened(e slimoci.Event) bool {
	return e.Kind == slimoci.Progressed && e.Message != "" && !e.Waiting && e.Unit == "" && e.Files == 0 && e.TotalFiles == 0
}

// lineRenderer prints plain lines.
type lineRenderer struct {
	w      io.Writer
	stages map[stageKey]*stageState
}

func (r *lineRenderer) event(e slimoci.Event) {
	k := keyOf(e)
	s := r.stages[k]
	if s == nil || e.Kind == slimoci.Started {
		s = &stageState{key: k}
		r.stages[k] = s
	}
	s.update(e)
	switch {
	case e.Kind == slimoci.Finished:
		fmt.Fprintf(r.w, "%s: %s\n", k.label(), s.summary())
	case happened(e):
		fmt.Fprintf(r.w, "%s: %s\n", k.label(), s.message)
	}
}

func (r *lineRenderer) close()          {}
func (r *lineRenderer) logs() io.Writer { return nil }

// barRenderer draws a line per stage on a terminal with mpb.
type barRenderer struct {
	p    *mpb.Progress
	out  *lockedLogs
	bars map[stageKey]*stageBar
}

// stageBar is one stage's line: mpb's render goroutine reads the state the events update.
type stageBar struct {
	mu    sync.Mutex
	state stageState
	bar   *mpb.Bar
}

// barWidth is the bar's part of a line: the rest is the stage's name, counts, rate, ETA and message.
const barWidth = 30

// maxMessage bounds a message on a stage's line, so that the line does not wrap (mpb redraws lines in place).
const maxMessage = 60

func newBarRenderer(w io.Writer) *barRenderer {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(barWidth), mpb.WithRefreshRate(100*time.Millisecond))
	return &barRenderer{p: p, out: &lockedLogs{p: p, w: w}, bars: map[stageKey]*stageBar{}}
}

func (r *barRenderer) logs() io.Writer { return r.out }

func (r *barRenderer) event(e slimoci.Event) {
	k := keyOf(e)
	b := r.bars[k]
	if b == nil || e.Kind == slimoci.Started {
		if b != nil {
			b.finish()
		}
		b = r.newBar(k)
		r.bars[k] = b
	}
	b.mu.Lock()
	b.state.update(e)
	primary := b.state.primary()
	b.mu.Unlock()
	if primary != nil {
		b.bar.SetTotal(primary.total, false)
		b.bar.SetCurrent(primary.complete)
	}
	if happened(e) {
		fmt.Fprintf(r.p, "%s: %s\n", k.label(), termsafe.String(e.Message))
	}
	if e.Kind == slimoci.Finished {
		b.finish()
	}
}

// primary is the count the bar draws: bytes, or files, whichever has a total.
func (s *stageState) primary() *count {
	switch {
	case s.bytes != nil && s.bytes.total > 0:
		return s.bytes
	case s.files != nil && s.files.total > 0:
		return s.files
	}
	return nil
}

func (r *barRenderer) newBar(k stageKey) *stageBar {
	b := &stageBar{state: stageState{key: k}}
	bar := mpb.BarStyle().Build()
	spinner := mpb.SpinnerStyle().PositionLeft().Build()
	// One filler: a bar once the total is known, a spinner until then, nothing when done (the summary says it).
	filler := mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
		b.mu.Lock()
		done, primary := b.state.done, b.state.primary()
		b.mu.Unlock()
		switch {
		case done:
			return nil
		case primary != nil:
			return bar.Fill(w, st)
		}
		return spinner.Fill(w, st)
	})
	unit := func(c func(*stageState) *count) func() bool {
		return func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			p := b.state.primary()
			return !b.state.done && p != nil && p == c(&b.state)
		}
	}
	isBytes, isFiles := unit(func(s *stageState) *count { return s.bytes }), unit(func(s *stageState) *count { return s.files })
	measured := func() bool { return isBytes() || isFiles() }
	// Add fails only once Wait was called, which close does after the last event.
	b.bar, _ = r.p.Add(0, filler,
		mpb.PrependDecorators(decor.Name(k.label()+" ", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			when(decor.Counters(decor.SizeB1000(0), " % .1f / % .1f"), isBytes),
			when(decor.AverageSpeed(decor.SizeB1000(0), ", % .1f"), isBytes),
			when(decor.Counters(0, " %d / %d files"), isFiles),
			when(decor.AverageSpeed(0, ", %.0f files/s"), isFiles),
			when(decor.Name(", ETA "), measured),
			when(decor.AverageETA(decor.ET_STYLE_GO), measured),
			decor.Any(func(decor.Statistics) string {
				b.mu.Lock()
				defer b.mu.Unlock()
				return b.state.line()
			}),
		),
	)
	return b
}

// when draws d while pred holds, nothing otherwise; asked at every drawing (mpb's OnPredicate asks once).
func when(d decor.Decorator, pred func() bool) decor.Decorator { return &whenDecorator{d, pred} }

type whenDecorator struct {
	decor.Decorator
	pred func() bool
}

func (w *whenDecorator) Decor(st decor.Statistics) (string, int) {
	if !w.pred() {
		return "", 0
	}
	return w.Decorator.Decor(st)
}

// Unwrap lets mpb find what the decorator is (its average decorators are adjusted, shut down).
func (w *whenDecorator) Unwrap() decor.Decorator { return w.Decorator }

// line is what follows the bar or the spinner: the summary once done; else the counts the bar does not
// draw and the message, cut to maxMessage.
func (s *stageState) line() string {
	if s.done {
		return "done: " + s.summary()
	}
	var parts []string
	primary := s.primary()
	if s.bytes != nil && primary == nil {
		parts = append(parts, humanBytes(s.bytes.complete))
	}
	if f := s.files; f != nil && f != primary {
		if f.total > 0 {
			parts = append(parts, fmt.Sprintf("%d / %d files", f.complete, f.total))
		} else {
			parts = append(parts, fmt.Sprintf("%d files", f.complete))
		}
	}
	if msg := s.message; msg != "" {
		if utf8.RuneCountInString(msg) > maxMessage {
			msg = string([]rune(msg)[:maxMessage-1]) + "…"
		}
		parts = append(parts, msg)
	} else if s.subject != "" && len(parts) == 0 {
		parts = append(parts, s.subject)
	}
	if len(parts) == 0 {
		return ""
	}
	sep := ", "
	if primary == nil {
		sep = " "
	}
	return sep + strings.Join(parts, ", ")
}

// finish marks the stage done and completes its bar: mpb draws it a last time and keeps the line.
func (b *stageBar) finish() {
	b.mu.Lock()
	b.state.done = true
	b.mu.Unlock()
	b.bar.SetTotal(-1, true)
}

// close ends the stages the job left unfinished (it failed: Main prints its error after the bars) and waits
// for mpb's last drawing.
func (r *barRenderer) close() {
	for _, b := range r.bars {
		if !b.bar.Completed() {
			b.bar.Abort(false)
		}
	}
	r.p.Wait()
	r.out.stop()
}

// lockedLogs writes log records above the bars while they are drawn, and to the terminal itself after.
type lockedLogs struct {
	mu      sync.Mutex
	p       *mpb.Progress
	w       io.Writer
	stopped bool
}

func (l *lockedLogs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		if n, err := l.p.Write(b); err == nil {
			return n, nil
		}
		// mpb is done drawing (its Wait returned): the terminal is free.
	}
	return l.w.Write(b)
}

func (l *lockedLogs) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
