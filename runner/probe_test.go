package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHTTPCommand(t *testing.T) {
	for in, want := range map[string]HTTPCommand{
		"/":                {Method: "GET", Resource: "/"},
		"/health?x=1":      {Method: "GET", Resource: "/health?x=1"},
		"POST:/api":        {Method: "POST", Resource: "/api"},
		"post:/api":        {Method: "POST", Resource: "/api"},
		"https:GET:/":      {Protocol: "https", Method: "GET", Resource: "/"},
		"HTTP:/x":          {Protocol: "http", Method: "GET", Resource: "/x"},
		"http:DELETE:/a:b": {Protocol: "http", Method: "DELETE", Resource: "/a:b"},
	} {
		got, err := ParseHTTPCommand(in)
		if err != nil || got.Protocol != want.Protocol || got.Method != want.Method || got.Resource != want.Resource {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"health", "GET:health", "ftp:GET:/x", "GE T:/x"} {
		if _, err := ParseHTTPCommand(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestReadHTTPCommandFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "f.json")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	cmds, err := ReadHTTPCommandFile(write(`{"commands":[{"resource":"/a"},{"protocol":"HTTPS","method":"post","resource":"/b","port":8443,"headers":["A: b"],"body":"{}"}]}`))
	if err != nil || len(cmds) != 2 || cmds[0].Method != "GET" || cmds[1].Protocol != "https" || cmds[1].Method != "POST" || cmds[1].Port != 8443 || cmds[1].Body != "{}" {
		t.Fatalf("%+v %v", cmds, err)
	}
	for bad, want := range map[string]string{
		`{"commands":[]}`: "no commands",
		`{"commands":[{"resource":"/","crawl":true}]}`:          "unknown field",
		`{"commands":[{"resource":"x"}]}`:                       "command 1",
		`{"commands":[{"resource":"/","headers":["nocolon"]}]}`: "header",
		`{"commands":[{"resource":"/","port":70000}]}`:          "out of range",
		`not json`: "invalid character",
	} {
		if _, err := ReadHTTPCommandFile(write(bad)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "f.json") {
			t.Errorf("%s: %v, want %q and the file name", bad, err, want)
		}
	}
}

func TestParseContinueAfter(t *testing.T) {
	for _, ok := range []string{"", "probe", "exec", "app-exit", "enter", "signal", "timeout", "30"} {
		if err := ParseContinueAfter(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"later", "0", "-5", "1.5"} {
		if err := ParseContinueAfter(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
