package termsafe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, one, text string }{
		{"plain text, ünïcødé, 中文 and a \\ backslash", "plain text, ünïcødé, 中文 and a \\ backslash", "plain text, ünïcødé, 中文 and a \\ backslash"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\a`, `\x1b]0;pwned\a`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`, `\x1b[2J\x1b[H`},
		{"a\nb\tc\r\n", `a\nb\tc\r\n`, "a\nb\tc\\r\n"},
		{"nul\x00 del\x7f bs\b", `nul\x00 del\x7f bs\b`, `nul\x00 del\x7f bs\b`},
		{"c1 \u009b2J \u0085 nbsp\u00a0", `c1 \u009b2J \u0085 nbsp` + "\u00a0", `c1 \u009b2J \u0085 nbsp` + "\u00a0"},
		{"bad \x9b utf8 \xff\xc2", `bad \x9b utf8 \xff\xc2`, `bad \x9b utf8 \xff\xc2`},
	} {
		if got := String(c.in); got != c.one {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.one)
		}
		if got := Text(c.in); got != c.text {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.text)
		}
		// Escaping twice changes nothing: what is escaped holds no control.
		if got := String(String(c.in)); got != c.one {
			t.Errorf("String twice of %q = %q", c.in, got)
		}
	}
}

// What the writer writes is Text of what it was given, however the writes split it, even inside a UTF-8
// sequence.
func TestWriter(t *testing.T) {
	in := "line one \x1b[31mred\x1b[0m\n\tü \u009b6n é\xe4\xb8\xadtail\r\n"
	want := Text(in)
	for size := 1; size <= len(in); size++ {
		var out bytes.Buffer
		w := NewWriter(&out)
		for i := 0; i < len(in); i += size {
			n, err := w.Write([]byte(in[i:min(i+size, len(in))]))
			if err != nil || n != min(size, len(in)-i) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		}
		w.Flush()
		if out.String() != want {
			t.Fatalf("in writes of %d bytes: %q, want %q", size, out.String(), want)
		}
	}
	// An unfinished sequence at the end comes out on Flush, as the invalid bytes it is.
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Write([]byte("ok \xe4\xb8"))
	if out.String() != "ok " {
		t.Fatalf("before Flush: %q", out.String())
	}
	w.Flush()
	if out.String() != `ok \xe4\xb8` {
		t.Fatalf("after Flush: %q", out.String())
	}
}

// JSON output stays JSON that decodes to the same values, with no raw control left.
func TestJSONWriter(t *testing.T) {
	v := map[string]string{"label": "\x1b]0;pwned\x07 \u009b2J \x7f é"}
	var raw, out bytes.Buffer
	json.NewEncoder(&raw).Encode(v)
	enc := json.NewEncoder(NewJSONWriter(&out))
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if !strings.ContainsRune(raw.String(), '\u009b') {
		t.Fatalf("encoding/json escapes C1 controls itself now: %q", raw.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\x7f\u009b") {
		t.Errorf("raw control in %q", out.String())
	}
	var back map[string]string
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back["label"] != v["label"] {
		t.Errorf("decoded %q, %v", back, err)
	}
}
