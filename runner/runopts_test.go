package runner

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseHostEntry(t *testing.T) {
	for in, want := range map[string]HostEntry{
		"db:10.0.0.5":          {"db", "10.0.0.5"},
		"db.internal=10.0.0.5": {"db.internal", "10.0.0.5"},
		"v6:::1":               {"v6", "::1"},
		"v6:[fe80::1]":         {"v6", "fe80::1"},
		"a-b.c:127.0.0.1":      {"a-b.c", "127.0.0.1"},
	} {
		if got, err := ParseHostEntry(in); err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"db":                  "HOST:IP",
		"db:host-gateway":     "not an IP",
		"db:10.0.0":           "not an IP",
		":10.0.0.5":           "1 to 64",
		"-db:10.0.0.5":        "not a valid name",
		"d b:10.0.0.5":        "not a letter",
		"db..x:10.0.0.5":      "not a valid name",
		"dé:10.0.0.5":         "not a letter",
		"db\n1.2.3.4:1.2.3.4": "not a letter",
	} {
		if _, err := ParseHostEntry(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	if err := CheckHostname(strings.Repeat("a", 63) + "." + "b"); err == nil {
		t.Error("a 65-character host name accepted")
	}
	if err := CheckHostname(strings.Repeat("a", 64)); err == nil {
		t.Error("a 64-character label accepted")
	}
	if err := CheckHostname("web-1.example"); err != nil {
		t.Error(err)
	}
}

func TestReadEnvFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	good := write("good.env", "# a comment\n\nGREETING=hello world \n  INDENTED=1\r\nQUOTED=\"kept as is\"\nEMPTY=\nEQ=a=b\n")
	got, err := ReadEnvFile(good)
	want := []string{"GREETING=hello world ", "INDENTED=1", `QUOTED="kept as is"`, "EMPTY=", "EQ=a=b"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%q %v, want %q", got, err, want)
	}
	for body, msg := range map[string]string{
		"A=1\nHOST_VAR\n": ":2: \"HOST_VAR\" has no value",
		"=1\n":            ":1: \"\" is not a variable name",
		"MY VAR=1\n":      ":1: \"MY VAR\" is not a variable name",
		"A=1\x00\n":       ":1: a NUL byte",
		"\n\n\nB\n":       ":4:",
		strings.Repeat("A=1234567\n", MaxEnvFileBytes/10+1): "over 1024 KiB",
	} {
		p := write("bad.env", body)
		if _, err := ReadEnvFile(p); err == nil || !strings.Contains(err.Error(), p+msg) && !strings.Contains(err.Error(), msg) {
			t.Errorf("%.30q: error %v, want %q", body, err, msg)
		}
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestParseVolume(t *testing.T) {
	dir, bind, err := ParseVolume("/cache/")
	if err != nil || dir != "/cache" || bind != nil {
		t.Errorf("anonymous: %q %v %v", dir, bind, err)
	}
	host := t.TempDir()
	dir, bind, err = ParseVolume(host + ":/data:ro")
	if err != nil || dir != "" || bind == nil || *bind != (Mount{Source: host, Destination: "/data", ReadOnly: true}) {
		t.Errorf("bind: %q %+v %v", dir, bind, err)
	}
	for _, bad := range []string{"cache", "rel:/data", host + ":/data:rx", "/nonexistent-host-path:/data"} {
		if _, _, err := ParseVolume(bad); err == nil || !strings.Contains(err.Error(), "--volume") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParsePublish(t *testing.T) {
	for in, want := range map[string]PortMapping{
		"8080":               {"127.0.0.1", 8080, 8080},
		"8080/tcp":           {"127.0.0.1", 8080, 8080},
		"18080:8080":         {"127.0.0.1", 18080, 8080},
		":8080":              {"127.0.0.1", 0, 8080},
		"127.0.0.1:18080:80": {"127.0.0.1", 18080, 80},
		"127.0.0.2::80":      {"127.0.0.2", 0, 80},
		"localhost:1:2":      {"127.0.0.1", 1, 2},
		"[::1]:18080:8080":   {"::1", 18080, 8080},
		"[::1]::8080":        {"::1", 0, 8080},
	} {
		if got, err := ParsePublish(in); err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"0.0.0.0:8080:8080":  "not a loopback address",
		"10.1.2.3::8080":     "not a loopback address",
		"[::]:8080:8080":     "not a loopback address",
		"example.com:1:2":    "not an IP address",
		"53/udp":             "only TCP",
		"1:2:3:4":            "want PORT",
		"0":                  "not a port number",
		"8080:0":             "not a port number",
		"x:8080":             "host port",
		"70000:80":           "host port",
		"[::1]8080":          "[IPv6]",
		"[::1]:8080":         "[IPv6]",
		"127.0.0.1:8080:abc": "not a port number",
	} {
		_, err := ParsePublish(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), in) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
		if strings.Contains(want, "loopback") && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("%q: %v is not ErrNotLoopback", in, err)
		}
	}
}
