// Package termsafe escapes control characters in text slimoci did not write (image metadata, an app's
// output, errors quoting either) before it reaches a terminal, where an escape sequence could retitle the
// window, clear or rewrite what was printed, or make the terminal answer as if typed.
package termsafe

import (
	"io"
	"sync"
	"unicode/utf8"
)

// String escapes every control character in s, newlines and tabs too: for one-line fields. C0 controls
// and DEL become \n, \t, \r, ... or \xNN, C1 controls \u0080 to \u009f, and bytes that are not UTF-8 \xNN.
// Backslashes are kept as they are, so that escaping twice changes nothing and commands, paths and
// Dockerfile continuations read as they were.
func String(s string) string { return escape([]byte(s), false, false) }

// Text is String for multi-line text: newlines and tabs are kept.
func Text(s string) string { return escape([]byte(s), true, false) }

// escape returns b escaped. keepLines keeps \n and \t; json writes JSON string escapes.
func escape(b []byte, keepLines, json bool) string {
	if clean(b, keepLines) {
		return string(b)
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		c := b[0]
		switch {
		case r == utf8.RuneError && n == 1 && json:
			out = append(out, `\ufffd`...)
		case r == utf8.RuneError && n == 1:
			out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
		case keepLines && (c == '\n' || c == '\t'):
			out = append(out, c)
		case json && (r < 0x20 || r >= 0x7f && r < 0xa0):
			out = append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		case r < 0x20 || r == 0x7f:
			if e := short(c); e != 0 {
				out = append(out, '\\', e)
			} else {
				out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
			}
		case r >= 0x80 && r < 0xa0:
			out = append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return string(out)
}

// short is the one-letter escape of a C0 control, as Go and C write them; 0 when it has none.
func short(c byte) byte {
	switch c {
	case '\a':
		return 'a'
	case '\b':
		return 'b'
	case '\f':
		return 'f'
	case '\n':
		return 'n'
	case '\r':
		return 'r'
	case '\t':
		return 't'
	case '\v':
		return 'v'
	}
	return 0
}

// clean reports whether b needs no escaping: printable ASCII (and \n, \t when kept) and valid UTF-8
// without C1 controls.
func clean(b []byte, keepLines bool) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && !(keepLines && (c == '\n' || c == '\t')) || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 || r < 0xa0 {
			return false
		}
		i += n
	}
	return true
}

// Writer writes what it is given to another writer, escaped as Text (or JSON) does. A Write may end in
// the middle of a UTF-8 sequence: those bytes (three at most) wait for the next Write, or for Flush, which
// escapes them as they are. It is safe for concurrent use: an app's stdout and stderr can share one.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	json    bool
	pending []byte
}

// NewWriter returns a Writer to w for text: newlines and tabs are kept, other controls escaped.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// NewJSONWriter returns a Writer to w for what encoding/json writes, which escapes C0 controls but leaves
// DEL and the C1 controls raw: those become \u007f to \u009f, which decode to the same strings, and bytes
// that are not UTF-8 (which encoding/json never writes) \ufffd.
func NewJSONWriter(w io.Writer) *Writer { return &Writer{w: w, json: true} }

// Write escapes p and writes it. It returns len(p) when the escaped bytes were written.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := p
	if len(w.pending) > 0 {
		b = append(w.pending, p...)
		w.pending = nil
	}
	cut := len(b) - unfinished(b)
	if cut < len(b) {
		w.pending = append([]byte(nil), b[cut:]...)
	}
	if cut == 0 {
		return len(p), nil
	}
	if _, err := io.WriteString(w.w, escape(b[:cut], true, w.json)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what waits of an unfinished UTF-8 sequence, escaped as the invalid bytes it then is.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	s := escape(w.pending, true, w.json)
	w.pending = nil
	_, err := io.WriteString(w.w, s)
	return err
}

// unfinished is how many bytes at the end of b start a UTF-8 sequence that the next bytes may complete.
func unfinished(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:]) {
				return len(b) - i
			}
			return 0
		}
	}
	return 0
}
