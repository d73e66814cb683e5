package runner

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
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
		"http2:/h2":        {Protocol: "http2", Method: "GET", Resource: "/h2"},
		"http2c:PUT:/h2c":  {Protocol: "http2c", Method: "PUT", Resource: "/h2c"},
		"ws:/chat":         {Protocol: "ws", Method: "GET", Resource: "/chat"},
		"WSS:GET:/chat":    {Protocol: "wss", Method: "GET", Resource: "/chat"},
		"http::/empty":     {Protocol: "http", Method: "GET", Resource: "/empty"},
		"crawl:/":          {Crawl: true, Method: "GET", Resource: "/"},
		"crawl:https:/a":   {Crawl: true, Protocol: "https", Method: "GET", Resource: "/a"},
		"OPTIONS:/":        {Method: "OPTIONS", Resource: "/"},
	} {
		got, err := ParseHTTPCommand(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for bad, why := range map[string]string{
		"health":         "does not start with /",
		"GET:health":     "does not start with /",
		"ftp:GET:/x":     "protocol \"ftp\" is not one of",
		"GE T:/x":        "not an HTTP method",
		"ws:POST:/chat":  "a ws probe is a GET",
		"":               "no path",
		"GET:/a b":       "space",
		"https:GET:":     "no path",
		"fastcgi:GET:/x": "protocol \"fastcgi\" is not one of",
	} {
		_, err := ParseHTTPCommand(bad)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "http probe \""+bad+"\"") {
			t.Errorf("%q: %v, want %q", bad, err, why)
		}
	}
}

func TestParseHTTPUpload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "photo.jpg")
	os.WriteFile(file, []byte("jpeg"), 0o644)
	form := func(c HTTPCommand) HTTPCommand { c.Method, c.BodyIsForm = "POST", true; return c }
	for in, want := range map[string]HTTPCommand{
		"/upload":                            form(HTTPCommand{Resource: "/upload", BodyGenerate: GenerateText}),
		"generate.image.png:/up":             form(HTTPCommand{Resource: "/up", BodyGenerate: GenerateImagePNG}),
		file + ":/up":                        form(HTTPCommand{Resource: "/up", BodyFile: file}),
		"photo:" + file + ":/up":             form(HTTPCommand{Resource: "/up", BodyFile: file, FormFieldName: "photo"}),
		"me.jpg:photo:" + file + ":/up":      form(HTTPCommand{Resource: "/up", BodyFile: file, FormFieldName: "photo", FormFileName: "me.jpg"}),
		"https:me.jpg:photo::/up":            form(HTTPCommand{Protocol: "https", Resource: "/up", BodyGenerate: GenerateText, FormFieldName: "photo", FormFileName: "me.jpg"}),
		":::generate.text.json:/up":          form(HTTPCommand{Resource: "/up", BodyGenerate: GenerateTextJSON}),
		"HTTP2::field:generate.image.gif:/x": form(HTTPCommand{Protocol: "http2", Resource: "/x", BodyGenerate: GenerateImageGIF, FormFieldName: "field"}),
	} {
		got, err := ParseHTTPUpload(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v,\nwant %+v", in, got, err, want)
		}
	}
	for bad, why := range map[string]string{
		"upload":                          "does not start with /",
		"a:b:c:d:e:/up":                   "6 fields",
		"generate.video:/up":              "body_generate \"generate.video\" is not one of",
		filepath.Join(dir, "no") + ":/up": "no such file",
		dir + ":/up":                      "not a regular file",
		"ftp:a:b:c:/up":                   "protocol \"ftp\"",
		"ws:a:b:generate.text:/up":        "a ws probe is a GET",
		"generate.text:":                  "no path",
	} {
		_, err := ParseHTTPUpload(bad)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "upload \""+bad+"\"") {
			t.Errorf("%q: %v, want %q", bad, err, why)
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
	body := filepath.Join(dir, "body.bin")
	os.WriteFile(body, []byte("data"), 0o644)
	rel, _ := filepath.Rel(mustGetwd(t), body)

	// Every field of mint's format, docker-slim's refused file among them (username and password).
	cmds, err := ReadHTTPCommandFile(write(`{"commands":[
		{"resource":"/a"},
		{"protocol":"HTTPS","method":"post","resource":"/b","port":8443,"headers":["A: b"],"body":"{}","username":"u","password":"p","crawl":true},
		{"method":"PUT","resource":"/c","body_file":"` + rel + `","body_is_form":true,"form_field_name":"doc","form_file_name":"d.bin"},
		{"resource":"/d","body_generate":"generate.image.jpeg"},
		{"resource":"/e","protocol":"ws","body":"hello"},
		{"resource":"/f.php/x?y=1","port":9000,"fastcgi":{"root":"/var/www/html","split_path":[".php"],"index":"main.php",
			"env":{"A":"1"},"params":{"B":"2"},"dial_timeout":"2s","read_timeout":3000000000,"write_timeout":"1m"}}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []HTTPCommand{
		{Method: "GET", Resource: "/a"},
		{Protocol: "https", Method: "POST", Resource: "/b", Port: 8443, Headers: []string{"A: b"}, Body: "{}", Username: "u", Password: "p", Crawl: true},
		{Method: "PUT", Resource: "/c", BodyFile: body, BodyIsForm: true, FormFieldName: "doc", FormFileName: "d.bin"},
		{Method: "GET", Resource: "/d", BodyGenerate: GenerateImageJPEG},
		{Protocol: "ws", Method: "GET", Resource: "/e", Body: "hello"},
		{Method: "GET", Resource: "/f.php/x?y=1", Port: 9000, FastCGI: &FastCGI{Root: "/var/www/html", SplitPath: []string{".php"}, Index: "main.php",
			Env: map[string]string{"A": "1"}, Params: map[string]string{"B": "2"}, DialTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: time.Minute}},
	}
	if !reflect.DeepEqual(cmds, want) {
		t.Errorf("got\n%+v\nwant\n%+v", cmds, want)
	}

	for bad, want := range map[string]string{
		`{"commands":[]}`: "f.json: no commands",
		`{"commands":[{"resource":"/"}],"extra":1}`:                            `f.json: unknown field "extra"`,
		`{"commands":[{"resource":"/"},{"resource":"/","usrname":"u"}]}`:       `f.json: commands[1]: unknown field "usrname"`,
		`{"commands":[{"resource":"/","fastcgi":{"rot":"/"}}]}`:                `f.json: commands[0]: fastcgi: unknown field "rot"`,
		`{"commands":[{"resource":"x"}]}`:                                      `commands[0]: resource "x" does not start with /`,
		`{"commands":[{"resource":"/","headers":["nocolon"]}]}`:                `commands[0]: header "nocolon"`,
		`{"commands":[{"resource":"/","headers":["A: b\nC: d"]}]}`:             "line break",
		`{"commands":[{"resource":"/","port":70000}]}`:                         "port 70000 is out of range",
		`{"commands":[{"resource":"/","port":"80"}]}`:                          `commands[0]: field "port": want a number, not a JSON string`,
		`{"commands":[{"resource":"/","crawl":"yes"}]}`:                        `field "crawl": want true or false`,
		`{"commands":[{"resource":"/","headers":"A: b"}]}`:                     `field "headers": want an array`,
		`{"commands":[{"resource":"/","protocol":"gopher"}]}`:                  `protocol "gopher" is not one of`,
		`{"commands":[{"resource":"/","method":"G T"}]}`:                       `method "G T"`,
		`{"commands":[{"resource":"/","body":"a","body_file":"` + rel + `"}]}`: "give at most one",
		`{"commands":[{"resource":"/","body_file":"/nonexistent/x"}]}`:         "body_file: stat /nonexistent/x: no such file",
		`{"commands":[{"resource":"/","body_generate":"generate.pdf"}]}`:       `body_generate "generate.pdf"`,
		`{"commands":[{"resource":"/","body_is_form":true}]}`:                  "body_is_form needs",
		`{"commands":[{"resource":"/","body":"x","form_field_name":"f"}]}`:     "need body_is_form",
		`{"commands":[{"resource":"/","protocol":"wss","method":"POST"}]}`:     "a wss probe is a GET",
		`{"commands":[{"resource":"/","protocol":"https","fastcgi":{}}]}`:      `protocol "https" does not apply`,
		`{"commands":[{"resource":"/","fastcgi":{"root":"www"}}]}`:             `root "www" is not absolute`,
		`{"commands":[{"resource":"/","fastcgi":{"index":"a/b.php"}}]}`:        "without /",
		`{"commands":[{"resource":"/","fastcgi":{"split_path":[""]}}]}`:        "empty entry",
		`{"commands":[{"resource":"/","fastcgi":{"dial_timeout":"soon"}}]}`:    `fastcgi: field "dial_timeout": "soon": want a Go duration`,
		`{"commands":[{"resource":"/","fastcgi":{"read_timeout":-5}}]}`:        `field "read_timeout": -5 is negative`,
		`{"commands":[{"resource":"/","fastcgi":{"env":{"A":1}}}]}`:            `fastcgi: field "env": want a string`,
		`{"commands":[{"resource":"/"}]} {}`:                                   "trailing data",
		`not json`:                                                             "not JSON",
		``:                                                                     "empty",
	} {
		if _, err := ReadHTTPCommandFile(write(bad)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "f.json") {
			t.Errorf("%s: %v, want %q and the file name", bad, err, want)
		}
	}
	if _, err := ReadHTTPCommandFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing file: %v", err)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
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
