package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The protocols of an HTTP probe, as mint's.
const (
	ProtoHTTP  = "http"
	ProtoHTTPS = "https"
	// ProtoHTTP2 is HTTP/2 over TLS (ALPN h2 only); ProtoHTTP2C is HTTP/2 over plain TCP with prior knowledge.
	ProtoHTTP2  = "http2"
	ProtoHTTP2C = "http2c"
	// ProtoWS and ProtoWSS are a WebSocket handshake and one message, over plain TCP and TLS.
	ProtoWS  = "ws"
	ProtoWSS = "wss"
	// ProtoFastCGI is the Proto of a probe sent to a FastCGI server (a command with FastCGI set).
	ProtoFastCGI = "fastcgi"
)

var protocols = []string{ProtoHTTP, ProtoHTTPS, ProtoHTTP2, ProtoHTTP2C, ProtoWS, ProtoWSS}

// What body_generate names (mint's): a short text, a short JSON document, or a 10x10 image.
const (
	GenerateText      = "generate.text"
	GenerateTextJSON  = "generate.text.json"
	GenerateImage     = "generate.image"
	GenerateImagePNG  = "generate.image.png"
	GenerateImageJPEG = "generate.image.jpeg"
	GenerateImageGIF  = "generate.image.gif"
)

var generateTypes = []string{GenerateText, GenerateTextJSON, GenerateImage, GenerateImagePNG, GenerateImageJPEG, GenerateImageGIF}

// HTTPCommand is one HTTP probe, in mint's (and docker-slim's) --http-probe-cmd-file format.
type HTTPCommand struct {
	// Protocol is one of the Proto constants but ProtoFastCGI, or "" for HTTP then HTTPS (and FastCGI on
	// port 9000, as mint: see protocols).
	Protocol string `json:"protocol,omitempty"`
	// Method is an HTTP method, GET when empty; a WebSocket handshake's is GET.
	Method string `json:"method,omitempty"`
	// Resource is the path, with its query, from "/".
	Resource string `json:"resource,omitempty"`
	// Port 0 means every probed port.
	Port int `json:"port,omitempty"`
	// Headers are "Name: value" lines.
	Headers []string `json:"headers,omitempty"`
	// The body is at most one of: Body as it is, the content of BodyFile (a host file; relative to the current
	// directory, as mint), or what BodyGenerate names (a Generate constant). A WebSocket probe sends it as
	// its message (mint's "ws.data" when there is none).
	Body         string `json:"body,omitempty"`
	BodyFile     string `json:"body_file,omitempty"`
	BodyGenerate string `json:"body_generate,omitempty"`
	// BodyIsForm sends the body as the one file of a multipart/form-data form, in the field FormFieldName
	// ("file") with the file name FormFileName (BodyFile's base name, else "file.data").
	BodyIsForm    bool   `json:"body_is_form,omitempty"`
	FormFieldName string `json:"form_field_name,omitempty"`
	FormFileName  string `json:"form_file_name,omitempty"`
	// Username and Password, when either is set, are sent as basic authentication.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Crawl asks for the pages this probe's answer links to to be crawled (mint's crawl, and the crawl:
	// prefix of --http-probe-cmd): see CrawlOptions. Not for a WebSocket or FastCGI probe.
	Crawl bool `json:"crawl,omitempty"`
	// FastCGI, when set, sends the request to a FastCGI server (PHP-FPM) instead of over HTTP.
	FastCGI *FastCGI `json:"fastcgi,omitempty"`
}

// FastCGI says how a probe's HTTP request becomes a FastCGI request: mint's fastcgi object, plus index and
// params.
type FastCGI struct {
	// Root is the document root in the app's filesystem: SCRIPT_FILENAME is Root and the script's path.
	// Default: the app's working directory, or / without one (mint: /).
	Root string `json:"root,omitempty"`
	// SplitPath splits the path after the first of these (".php") that ends one of its elements: the part
	// before is the script, the rest PATH_INFO. Without it the whole path is the script.
	SplitPath []string `json:"split_path,omitempty"`
	// Index is the script a path ending in / names (default index.php).
	Index string `json:"index,omitempty"`
	// Env and Params are extra FastCGI parameters, merged (Params win), over the computed ones.
	Env    map[string]string `json:"env,omitempty"`
	Params map[string]string `json:"params,omitempty"`
	// The timeouts of connecting, of each read and of each write (default: the probe's client timeout), in
	// JSON a Go duration ("5s") or a number of nanoseconds, as mint's JSON has them.
	DialTimeout  time.Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  time.Duration `json:"read_timeout,omitempty"`
	WriteTimeout time.Duration `json:"write_timeout,omitempty"`
}

// UnmarshalJSON reads a fastcgi object, refusing the fields it does not know as the command does.
func (f *FastCGI) UnmarshalJSON(b []byte) error {
	type plain FastCGI
	var v struct {
		plain
		// The timeouts shadow plain's: read as they come, then parsed.
		DialTimeout  json.RawMessage `json:"dial_timeout"`
		ReadTimeout  json.RawMessage `json:"read_timeout"`
		WriteTimeout json.RawMessage `json:"write_timeout"`
	}
	if err := strictJSON(b, &v); err != nil {
		return fmt.Errorf("fastcgi: %w", err)
	}
	*f = FastCGI(v.plain)
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		to   *time.Duration
	}{{"dial_timeout", v.DialTimeout, &f.DialTimeout}, {"read_timeout", v.ReadTimeout, &f.ReadTimeout}, {"write_timeout", v.WriteTimeout, &f.WriteTimeout}} {
		if len(d.raw) == 0 || string(d.raw) == "null" {
			continue
		}
		var err error
		if *d.to, err = parseJSONDuration(d.raw); err != nil {
			return fmt.Errorf("fastcgi: field %q: %w", d.name, err)
		}
	}
	return nil
}

// parseJSONDuration reads "5s" or 5000000000 (nanoseconds).
func parseJSONDuration(b []byte) (time.Duration, error) {
	var v time.Duration
	bad := fmt.Errorf("%s: want a Go duration (5s, 1m30s) or a number of nanoseconds", b)
	if s, err := strconv.Unquote(string(b)); err == nil {
		if v, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	} else {
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return 0, bad
		}
		v = time.Duration(n)
	}
	if v < 0 {
		return 0, fmt.Errorf("%s is negative", b)
	}
	return v, nil
}

// probeSyntax is what ParseHTTPCommand's errors show.
const probeSyntax = "want [crawl:][PROTO:][METHOD:]/PATH, PROTO one of http, https, http2, http2c, ws, wss"

// ParseHTTPCommand reads mint's --http-probe-cmd syntax, [crawl:][PROTO:][METHOD:]/PATH, such as "/health",
// "POST:/api", "https:GET:/", "ws:/chat" or "crawl:/": PROTO one of the Proto constants but ProtoFastCGI,
// an empty METHOD GET; crawl sets Crawl.
func ParseHTTPCommand(s string) (HTTPCommand, error) {
	c := HTTPCommand{}
	rest := s
	if p, r, ok := strings.Cut(rest, ":"); ok && strings.EqualFold(p, "crawl") {
		c.Crawl, rest = true, r
	}
	if p, r, ok := strings.Cut(rest, ":"); ok && slices.Contains(protocols, strings.ToLower(p)) {
		c.Protocol, rest = strings.ToLower(p), r
	}
	if m, r, ok := strings.Cut(rest, ":"); ok && !strings.HasPrefix(m, "/") {
		c.Method, rest = m, r
	}
	c.Resource = rest
	if c.Resource == "" {
		return HTTPCommand{}, fmt.Errorf("http probe %q: no path (%s)", s, probeSyntax)
	}
	if c.Protocol == "" && c.Method != "" && !strings.HasPrefix(rest, "/") && strings.Contains(rest, ":") {
		// PROTO:METHOD:/PATH with a PROTO it does not know.
		return HTTPCommand{}, fmt.Errorf("http probe %q: protocol %q is not one of %s (%s)", s, strings.ToLower(c.Method), strings.Join(protocols, ", "), probeSyntax)
	}
	if err := c.check(); err != nil {
		return HTTPCommand{}, fmt.Errorf("http probe %q: %w (%s)", s, err, probeSyntax)
	}
	return c, nil
}

// uploadSyntax is what ParseHTTPUpload's errors show.
const uploadSyntax = "want [[[[[PROTO:]FORM_FILE_NAME:]FORM_FIELD_NAME:]FILE_OR_GENERATE_TYPE:]/PATH]"

// ParseHTTPUpload reads mint's --http-probe-cmd-upload syntax, [[[[[PROTO:]FORM_FILE_NAME:]FORM_FIELD_NAME:]
// FILE_OR_GENERATE_TYPE:]/PATH]: a POST of a multipart form whose one file is a host file or generated
// (a value starting with "generate.", see the Generate constants). Unlike mint, whose upload without a
// file sends an empty POST, an empty FILE_OR_GENERATE_TYPE uploads generate.text: the flag is for uploads.
func ParseHTTPUpload(s string) (HTTPCommand, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 5 {
		return HTTPCommand{}, fmt.Errorf("http probe upload %q: %d fields (%s)", s, len(parts), uploadSyntax)
	}
	c := HTTPCommand{Method: "POST", BodyIsForm: true}
	// The fields are counted from the right: the path is always the last.
	for i, p := range parts {
		switch 5 - len(parts) + i {
		case 0:
			c.Protocol = strings.ToLower(p)
		case 1:
			c.FormFileName = p
		case 2:
			c.FormFieldName = p
		case 3:
			if strings.HasPrefix(p, "generate.") {
				c.BodyGenerate = p
			} else {
				c.BodyFile = p
			}
		case 4:
			c.Resource = p
		}
	}
	if c.BodyFile == "" && c.BodyGenerate == "" {
		c.BodyGenerate = GenerateText
	}
	if c.Resource == "" {
		return HTTPCommand{}, fmt.Errorf("http probe upload %q: no path (%s)", s, uploadSyntax)
	}
	if err := c.check(); err != nil {
		return HTTPCommand{}, fmt.Errorf("http probe upload %q: %w (%s)", s, err, uploadSyntax)
	}
	return c, nil
}

// check validates c and fills its defaults: the protocol in lower case, the method in upper case (GET when
// empty), the path (/ when empty), BodyFile made absolute.
func (c *HTTPCommand) check() error {
	c.Protocol = strings.ToLower(c.Protocol)
	c.Method = strings.ToUpper(c.Method)
	if c.Method == "" {
		c.Method = "GET"
	}
	if c.Resource == "" {
		c.Resource = "/"
	}
	switch {
	case c.Protocol != "" && !slices.Contains(protocols, c.Protocol):
		return fmt.Errorf("protocol %q is not one of %s", c.Protocol, strings.Join(protocols, ", "))
	case !isToken(c.Method):
		return fmt.Errorf("method %q is not an HTTP method", c.Method)
	case !strings.HasPrefix(c.Resource, "/"):
		return fmt.Errorf("resource %q does not start with /", c.Resource)
	case strings.ContainsFunc(c.Resource, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("resource %q has a space or a control character", c.Resource)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("port %d is out of range", c.Port)
	}
	if _, err := url.ParseRequestURI(c.Resource); err != nil {
		return fmt.Errorf("resource %q is not a path: %w", c.Resource, errors.Unwrap(err))
	}
	for _, h := range c.Headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || !isToken(strings.TrimSpace(name)) {
			return fmt.Errorf("header %q is not \"Name: value\"", h)
		}
		if strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("header %q has a line break", h)
		}
	}
	bodies := 0
	for _, b := range []string{c.Body, c.BodyFile, c.BodyGenerate} {
		if b != "" {
			bodies++
		}
	}
	if bodies > 1 {
		return errors.New("body, body_file and body_generate: give at most one")
	}
	if c.BodyGenerate != "" && !slices.Contains(generateTypes, c.BodyGenerate) {
		return fmt.Errorf("body_generate %q is not one of %s", c.BodyGenerate, strings.Join(generateTypes, ", "))
	}
	if c.BodyFile != "" {
		abs, err := filepath.Abs(c.BodyFile)
		if err != nil {
			return fmt.Errorf("body_file %q: %w", c.BodyFile, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("body_file: %w", err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("body_file %s is not a regular file", abs)
		}
		c.BodyFile = abs
	}
	switch {
	case c.BodyIsForm && bodies == 0:
		return errors.New("body_is_form needs body, body_file or body_generate")
	case !c.BodyIsForm && (c.FormFieldName != "" || c.FormFileName != ""):
		return errors.New("form_field_name and form_file_name need body_is_form")
	case strings.ContainsAny(c.FormFieldName+c.FormFileName, "\r\n\""):
		return errors.New("form_field_name and form_file_name may not have quotes or line breaks")
	}
	if c.Protocol == ProtoWS || c.Protocol == ProtoWSS {
		switch {
		case c.Crawl:
			return fmt.Errorf("a %s probe has no pages to crawl", c.Protocol)
		case c.Method != "GET":
			return fmt.Errorf("a %s probe is a GET (its handshake), not %s", c.Protocol, c.Method)
		case c.BodyIsForm:
			return fmt.Errorf("a %s probe sends its body as a message: body_is_form does not apply", c.Protocol)
		}
	}
	if f := c.FastCGI; f != nil {
		if c.Protocol != "" && c.Protocol != ProtoHTTP {
			return fmt.Errorf("fastcgi: a FastCGI probe speaks FastCGI, protocol %q does not apply", c.Protocol)
		}
		if c.Crawl {
			return errors.New("fastcgi: a FastCGI probe is not crawled (the crawler speaks HTTP)")
		}
		if f.Root != "" && !strings.HasPrefix(f.Root, "/") {
			return fmt.Errorf("fastcgi: root %q is not absolute", f.Root)
		}
		if strings.Contains(f.Index, "/") {
			return fmt.Errorf("fastcgi: index %q is a file name, without /", f.Index)
		}
		if slices.Contains(f.SplitPath, "") {
			return errors.New("fastcgi: split_path has an empty entry")
		}
		for _, m := range []map[string]string{f.Env, f.Params} {
			for k := range m {
				if k == "" {
					return errors.New("fastcgi: a parameter has no name")
				}
			}
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (a method or a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

// ReadHTTPCommandFile reads mint's probe file, {"commands":[{...}]}, with every field of mint's format (see
// HTTPCommand). A field it does not know is an error naming the file, the entry and the field, never
// ignored: a misspelt "usrname" would otherwise probe without credentials.
func ReadHTTPCommandFile(path string) ([]HTTPCommand, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Commands []json.RawMessage `json:"commands"`
	}
	if err := strictJSON(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Commands) == 0 {
		return nil, fmt.Errorf("%s: no commands", path)
	}
	cmds := make([]HTTPCommand, len(f.Commands))
	for i, raw := range f.Commands {
		if err := strictJSON(raw, &cmds[i]); err != nil {
			return nil, fmt.Errorf("%s: commands[%d]: %w", path, i, err)
		}
		if err := cmds[i].check(); err != nil {
			return nil, fmt.Errorf("%s: commands[%d]: %w", path, i, err)
		}
	}
	return cmds, nil
}

// strictJSON decodes one JSON value into v, refusing unknown fields and trailing data, with errors that
// name the field and say what it wants.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			// FastCGI.UnmarshalJSON's fields are under its embedded plain.
			return fmt.Errorf("field %q: want %s, not a JSON %s", strings.TrimPrefix(te.Field, "plain."), jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &te):
			return fmt.Errorf("want %s, not a JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return fmt.Errorf("not JSON: %s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
		case errors.Is(err, io.EOF):
			return errors.New("empty")
		}
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// jsonKind names a Go kind as the JSON value it takes.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "slice", k == "array":
		return "an array"
	case k == "struct", k == "map":
		return "an object"
	case k == "bool":
		return "true or false"
	}
	return "a " + k
}
