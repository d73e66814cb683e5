package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

// APISpec is an OpenAPI document the app serves (--http-probe-apispec PATH[:PREFIX]): fetched from each
// probed port after the probes, as a probe of its own (it is sent, retried and judged as one; a document
// that cannot be read fails it), each of its operations then probed on that port (see APISpecCommands).
// Its $refs may not leave it: the app is not trusted, and nothing it names is read on the host.
type APISpec struct {
	// Path is where the app serves the document, from /.
	Path string
	// Prefix, when set, replaces the document's base path (see APISpecCommands).
	Prefix string
}

// The bounds of an API spec: what is read of one, and how many operations are probed.
//
// A request is made of the document's values (its examples, shared by $refs, and values made of its
// schemas), and a few lines of schema describe huge ones: one value (a parameter's or a body's) over
// MaxAPISpecValue, or requests over MaxAPISpecRequests all together, refuse the document (its probe
// fails, or the file is refused), naming the operation; nothing is cut, a cut body would be a probe of
// something else.
const (
	MaxAPISpecBytes      = 16 << 20
	MaxAPISpecOperations = 10_000
	MaxAPISpecValue      = 1 << 20
	MaxAPISpecRequests   = 64 << 20
)

// ParseAPISpec reads --http-probe-apispec's PATH[:PREFIX] (split at the first colon, as mint).
func ParseAPISpec(s string) (APISpec, error) {
	path, prefix, _ := strings.Cut(s, ":")
	c := HTTPCommand{Resource: path}
	if path == "" {
		return APISpec{}, fmt.Errorf("--http-probe-apispec %q: no path (want PATH[:PREFIX], PATH from /)", s)
	}
	if err := c.check(); err != nil {
		return APISpec{}, fmt.Errorf("--http-probe-apispec %q: %w", s, err)
	}
	if err := checkPrefix(prefix); err != nil {
		return APISpec{}, fmt.Errorf("--http-probe-apispec %q: %w", s, err)
	}
	return APISpec{Path: path, Prefix: prefix}, nil
}

func checkPrefix(prefix string) error {
	switch {
	case prefix == "":
	case !strings.HasPrefix(prefix, "/"):
		return fmt.Errorf("prefix %q does not start with /", prefix)
	case strings.ContainsAny(prefix, "?#{}") || strings.ContainsFunc(prefix, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("prefix %q is not a path (a query, a fragment, a template, a space or a control character)", prefix)
	}
	return nil
}

// ReadAPISpecFile reads --http-probe-apispec-file's FILE[:PREFIX] (split at the first colon, as mint) and
// returns the commands that probe its operations (see APISpecCommands). Its $refs may name other files
// beside it (under its directory), as mint's: the file is the user's; no URL, and no file elsewhere.
func ReadAPISpecFile(arg string) ([]HTTPCommand, error) {
	file, prefix, _ := strings.Cut(arg, ":")
	if err := checkPrefix(prefix); err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file %q: %w", arg, err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file %q: %w", arg, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAPISpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file %s: %w", abs, err)
	}
	if len(data) > MaxAPISpecBytes {
		return nil, fmt.Errorf("--http-probe-apispec-file %s: over %d MiB", abs, MaxAPISpecBytes>>20)
	}
	doc, err := parseAPISpec(data, &url.URL{Path: abs})
	if err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file %s: %w", abs, err)
	}
	cmds, err := APISpecCommands(doc, prefix)
	if err != nil {
		return nil, fmt.Errorf("--http-probe-apispec-file %s: %w", abs, err)
	}
	return cmds, nil
}

// parseAPISpec reads an OpenAPI 3 document, or a Swagger 2 one converted to OpenAPI 3 (kin-openapi's
// openapi2conv), in JSON or YAML. With a location (a file), $refs to files beside it are read; without,
// none outside the document.
func parseAPISpec(data []byte, location *url.URL) (*openapi3.T, error) {
	// YAML is a superset of JSON: one decoder says which it is.
	var head struct {
		Swagger any `yaml:"swagger"`
		OpenAPI any `yaml:"openapi"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %w", err)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = location != nil
	if location != nil {
		// kin-openapi's own reader follows http(s) $refs and any absolute path: only files under the
		// document's directory are read.
		loader.ReadFromURIFunc = besideReader(filepath.Dir(location.Path))
	}
	var doc *openapi3.T
	// An unquoted version in YAML is a number: 3.0 reads as 3.
	switch v2, v3 := fmt.Sprint(head.Swagger), fmt.Sprint(head.OpenAPI); {
	case head.OpenAPI != nil && (v3 == "3" || strings.HasPrefix(v3, "3.")):
		var err error
		if location != nil {
			doc, err = loader.LoadFromDataWithPath(data, location)
		} else {
			doc, err = loader.LoadFromData(data)
		}
		if err != nil {
			return nil, fmt.Errorf("reading OpenAPI %s: %w", v3, err)
		}
	case head.Swagger != nil && (v2 == "2" || strings.HasPrefix(v2, "2.")):
		var doc2 openapi2.T
		if err := openapi2.UnmarshalFromData(data, &doc2); err != nil {
			return nil, fmt.Errorf("reading Swagger %s: %w", v2, err)
		}
		var err error
		if doc, err = openapi2conv.ToV3WithLoader(&doc2, loader, location); err != nil {
			return nil, fmt.Errorf("converting Swagger %s to OpenAPI 3: %w", v2, err)
		}
	default:
		return nil, errors.New(`neither an OpenAPI 3 document (openapi: "3.x") nor a Swagger 2 one (swagger: "2.0")`)
	}
	if doc.Paths == nil || doc.Paths.Len() == 0 {
		return nil, errors.New("no paths")
	}
	return doc, nil
}

// besideReader reads a $ref's file if it is under dir (by os.Root: not by .. nor a symbolic link out), at
// most MaxAPISpecBytes of it; a URL (http, file://host) or any other path is refused.
func besideReader(dir string) openapi3.ReadFromURIFunc {
	return func(_ *openapi3.Loader, u *url.URL) ([]byte, error) {
		if u.Scheme != "" && u.Scheme != "file" || u.Host != "" {
			return nil, fmt.Errorf("$ref %s: not a file beside the document", u.Redacted())
		}
		rel, err := filepath.Rel(dir, filepath.Clean(u.Path))
		if err != nil || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("$ref %s: not a file under %s", u.Path, dir)
		}
		f, err := os.OpenInRoot(dir, rel)
		if err != nil {
			return nil, fmt.Errorf("$ref %s: %w", u.Path, err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxAPISpecBytes+1))
		if err != nil {
			return nil, fmt.Errorf("$ref %s: %w", u.Path, err)
		}
		if len(data) > MaxAPISpecBytes {
			return nil, fmt.Errorf("$ref %s: over %d MiB", u.Path, MaxAPISpecBytes>>20)
		}
		return data, nil
	}
}

// APISpecCommands returns a probe for each of doc's operations, in an order that keeps state-changing ones
// from taking away what others read: every GET, HEAD, OPTIONS, QUERY and TRACE first, then POST, PUT, PATCH
// and other methods, then DELETE, each by path (CONNECT operations are not probed). Each path is the base
// path (prefix when given, else the path of the document's first server URL, its variables at their
// default: Swagger 2's basePath) and the operation's path, "/" dropping the base path.
//
// Each request carries the operation's (and its path's) parameters: path parameters, and the query,
// header and cookie ones that are required or have an example or a default, serialized by their style;
// and its body when it has one: the first of application/json (or a +json type),
// application/x-www-form-urlencoded, multipart/form-data, text/plain and, with an example, any other type.
// Values are a parameter's or a media type's example, else its schema's example, default or first enum
// value, else one of the schema's type (see schemaValue). Security schemes are not applied: no credentials
// are sent.
func APISpecCommands(doc *openapi3.T, prefix string) ([]HTTPCommand, error) {
	base := prefix
	if base == "" {
		base = serverPath(doc.Servers)
	}
	base = strings.TrimRight(base, "/")
	type op struct {
		rank         int
		path, method string
		item         *openapi3.PathItem
		op           *openapi3.Operation
	}
	var ops []op
	for path, item := range doc.Paths.Map() {
		if item == nil {
			continue
		}
		for method, o := range item.Operations() {
			method = strings.ToUpper(method)
			rank := 1
			switch method {
			case http.MethodConnect:
				continue
			case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, "QUERY":
				rank = 0
			case http.MethodDelete:
				rank = 2
			}
			if o != nil {
				ops = append(ops, op{rank, path, method, item, o})
			}
		}
	}
	if len(ops) > MaxAPISpecOperations {
		return nil, fmt.Errorf("%d operations, more than the %d probed", len(ops), MaxAPISpecOperations)
	}
	sort.Slice(ops, func(i, j int) bool {
		a, b := ops[i], ops[j]
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.path != b.path {
			return a.path < b.path
		}
		return a.method < b.method
	})
	var cmds []HTTPCommand
	total := 0
	for _, o := range ops {
		c, err := operationCommand(base, o.path, o.method, o.item, o.op)
		if err == nil {
			err = c.check()
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.method, o.path, err)
		}
		total += len(c.Resource) + len(c.Body)
		for _, h := range c.Headers {
			total += len(h)
		}
		if total > MaxAPISpecRequests {
			return nil, fmt.Errorf("%s %s: the requests of the operations up to it are over %d MiB", o.method, o.path, MaxAPISpecRequests>>20)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// serverPath is the path of the first server's URL, its variables at their default (or first enum value).
func serverPath(servers openapi3.Servers) string {
	if len(servers) == 0 || servers[0] == nil {
		return ""
	}
	s := servers[0]
	u := s.URL
	for name, v := range s.Variables {
		val := ""
		if v != nil {
			val = v.Default
			if val == "" && len(v.Enum) > 0 {
				val = v.Enum[0]
			}
		}
		u = strings.ReplaceAll(u, "{"+name+"}", val)
	}
	u = strings.NewReplacer("{", "", "}", "").Replace(u)
	parsed, err := url.Parse(u)
	if err != nil || parsed.Path == "/" {
		return ""
	}
	return parsed.Path
}

var pathParam = regexp.MustCompile(`\{([^{}/]*)\}`)

// operationCommand makes the probe of one operation.
func operationCommand(base, path, method string, item *openapi3.PathItem, op *openapi3.Operation) (HTTPCommand, error) {
	// The operation's parameters override its path's of the same name and place.
	var params []*openapi3.Parameter
	index := map[string]int{}
	for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, ref := range list {
			if ref == nil || ref.Value == nil {
				continue
			}
			p := ref.Value
			key := p.In + " " + p.Name
			if i, ok := index[key]; ok {
				params[i] = p
				continue
			}
			index[key] = len(params)
			params = append(params, p)
		}
	}
	c := HTTPCommand{Method: method}
	values := map[string]string{}
	var query, cookies []string
	for _, p := range params {
		v, given, err := paramValue(p)
		if err != nil {
			return HTTPCommand{}, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		if p.In != openapi3.ParameterInPath && !p.Required && !given {
			continue
		}
		switch p.In {
		case openapi3.ParameterInPath:
			values[p.Name] = serializePath(p, v)
		case openapi3.ParameterInQuery:
			query = append(query, serializeQuery(p, v)...)
		case openapi3.ParameterInHeader:
			switch textproto.CanonicalMIMEHeaderKey(p.Name) {
			case "Accept", "Content-Type", "Authorization":
				// OpenAPI ignores these as parameters: they are the media types' and the security schemes'.
			default:
				c.Headers = append(c.Headers, p.Name+": "+joinValue(v, ",", false))
			}
		case openapi3.ParameterInCookie:
			cookies = append(cookies, p.Name+"="+joinValue(v, ",", false))
		}
	}
	resource := pathParam.ReplaceAllStringFunc(path, func(m string) string {
		name := m[1 : len(m)-1]
		if v, ok := values[name]; ok {
			return v
		}
		// A template without its parameter: its name stands for it, as mint.
		return url.PathEscape(name)
	})
	c.Resource = base + resource
	if !strings.HasPrefix(c.Resource, "/") {
		c.Resource = "/" + c.Resource
	}
	if len(query) > 0 {
		c.Resource += "?" + strings.Join(query, "&")
	}
	if len(cookies) > 0 {
		c.Headers = append(c.Headers, "Cookie: "+strings.Join(cookies, "; "))
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		ctype, body, err := requestBody(op.RequestBody.Value.Content)
		if err != nil {
			return HTTPCommand{}, fmt.Errorf("request body: %w", err)
		}
		if ctype != "" {
			c.Headers = append(c.Headers, "Content-Type: "+ctype)
			c.Body = body
		}
	}
	return c, nil
}

// paramValue is a parameter's value, and whether the spec gave one (an example or a default); an error
// when it is over MaxAPISpecValue.
func paramValue(p *openapi3.Parameter) (any, bool, error) {
	if p.Example != nil {
		return p.Example, true, checkValue(p.Example)
	}
	if v, ok := firstExample(p.Examples); ok {
		return v, true, checkValue(v)
	}
	if p.Schema == nil {
		if mt := firstMedia(p.Content); mt != nil {
			// A parameter with content is that media type's document (JSON, as slimoci writes it) in one
			// value.
			v, given := mediaExample(mt)
			var err error
			if given {
				err = checkValue(v)
			} else {
				v, err = (&valueGen{}).generate(mt.Schema)
				_, given = specified(orEmpty(mt.Schema))
			}
			if err != nil {
				return nil, false, err
			}
			if _, ok := v.(string); !ok {
				b, _ := json.Marshal(v)
				v = string(b)
			}
			return v, given, nil
		}
		return "string", false, nil
	}
	_, given := specified(orEmpty(p.Schema))
	v, err := (&valueGen{}).generate(p.Schema)
	return v, given, err
}

// checkValue refuses a value over MaxAPISpecValue (see valueSize).
func checkValue(v any) error {
	if valueSize(v, MaxAPISpecValue) > MaxAPISpecValue {
		return fmt.Errorf("a value of over %d MiB", MaxAPISpecValue>>20)
	}
	return nil
}

// valueSize is about the size of v written as JSON, counted up to a little past limit (a value is walked no
// further once it is known to be too big: an example may be large, and shared by many operations).
func valueSize(v any, limit int) int {
	n := 0
	var walk func(any)
	walk = func(v any) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case string:
			n += len(x) + 2
		case []any:
			n += 2
			for _, item := range x {
				n++
				walk(item)
			}
		case map[string]any:
			n += 2
			for k, item := range x {
				n += len(k) + 4
				walk(item)
			}
		default:
			n += 8
		}
	}
	walk(v)
	return n
}

func orEmpty(ref *openapi3.SchemaRef) *openapi3.Schema {
	if ref == nil || ref.Value == nil {
		return &openapi3.Schema{}
	}
	return ref.Value
}

// firstExample is the value of the first of examples, by name.
func firstExample(examples openapi3.Examples) (any, bool) {
	names := slices.Sorted(maps.Keys(examples))
	for _, n := range names {
		if e := examples[n]; e != nil && e.Value != nil && e.Value.Value != nil {
			return e.Value.Value, true
		}
	}
	return nil, false
}

func mediaExample(mt *openapi3.MediaType) (any, bool) {
	if mt.Example != nil {
		return mt.Example, true
	}
	return firstExample(mt.Examples)
}

// firstMedia is a content's media type by the first of its names.
func firstMedia(content openapi3.Content) *openapi3.MediaType {
	names := slices.Sorted(maps.Keys(content))
	for _, n := range names {
		if content[n] != nil {
			return content[n]
		}
	}
	return nil
}

// requestBody picks the media type of a body and makes it: its content type and the body.
func requestBody(content openapi3.Content) (ctype, body string, err error) {
	names := slices.Sorted(maps.Keys(content))
	rank := func(n string) int {
		mt, _, _ := strings.Cut(strings.ToLower(n), ";")
		mt = strings.TrimSpace(mt)
		switch {
		case mt == "application/json":
			return 0
		case strings.HasSuffix(mt, "+json"):
			return 1
		case mt == "application/x-www-form-urlencoded":
			return 2
		case mt == "multipart/form-data":
			return 3
		case mt == "text/plain":
			return 4
		}
		return 5
	}
	sort.SliceStable(names, func(i, j int) bool { return rank(names[i]) < rank(names[j]) })
	for _, n := range names {
		mt := content[n]
		if mt == nil || strings.Contains(n, "*") {
			continue
		}
		v, given := mediaExample(mt)
		var err error
		if given {
			err = checkValue(v)
		} else {
			if rank(n) == 5 {
				// A type slimoci cannot make a value of without an example (XML, an image, ...).
				continue
			}
			v, err = (&valueGen{writing: true}).generate(mt.Schema)
		}
		if err != nil {
			return "", "", fmt.Errorf("%s: %w", n, err)
		}
		switch rank(n) {
		case 0, 1:
			b, err := json.Marshal(v)
			if err != nil {
				return "", "", err
			}
			return n, string(b), nil
		case 2:
			return n, formValues(v).Encode(), nil
		case 3:
			ctype, body, err := multipartBody(v, mt.Schema)
			return ctype, body, err
		}
		if s, ok := v.(string); ok {
			return n, s, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", "", err
		}
		return n, string(b), nil
	}
	return "", "", nil
}

// formValues are an object's properties as form fields (an array's items repeated), sorted by name.
func formValues(v any) url.Values {
	out := url.Values{}
	obj, ok := v.(map[string]any)
	if !ok {
		return out
	}
	for k, x := range obj {
		if arr, ok := x.([]any); ok {
			for _, item := range arr {
				out.Add(k, scalarString(item))
			}
			continue
		}
		out.Add(k, scalarString(x))
	}
	return out
}

// multipartBoundary is fixed: the same spec makes the same requests, run after run.
const multipartBoundary = "slimoci-openapi-form"

// multipartBody makes a multipart/form-data body of an object's properties: a binary one (format binary or
// base64, or a contentMediaType) as a file, file.data, the others as fields.
func multipartBody(v any, schema *openapi3.SchemaRef) (string, string, error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(multipartBoundary); err != nil {
		return "", "", err
	}
	obj, _ := v.(map[string]any)
	names := slices.Sorted(maps.Keys(obj))
	for _, k := range names {
		var prop *openapi3.Schema
		if schema != nil && schema.Value != nil && schema.Value.Properties[k] != nil {
			prop = schema.Value.Properties[k].Value
		}
		if prop != nil && (prop.Format == "binary" || prop.Format == "base64" || prop.ContentMediaType != "") {
			fw, err := w.CreateFormFile(k, "file.data")
			if err != nil {
				return "", "", err
			}
			io.WriteString(fw, scalarString(obj[k]))
			continue
		}
		values := []any{obj[k]}
		if arr, ok := obj[k].([]any); ok {
			values = arr
		}
		for _, x := range values {
			if err := w.WriteField(k, scalarString(x)); err != nil {
				return "", "", err
			}
		}
	}
	if err := w.Close(); err != nil {
		return "", "", err
	}
	return w.FormDataContentType(), b.String(), nil
}

// scalarString writes a value as a parameter or a form field has it: a string as it is, anything else as
// JSON (1, true, null, an object).
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// joinValue serializes v as OpenAPI's simple style does: an array's items joined by sep, an object's
// names and values joined by sep (explode: name=value pairs), each escaped with url.PathEscape when
// escape is set.
func joinValue(v any, sep string, escape bool) string {
	esc := func(s string) string {
		if escape {
			return url.PathEscape(s)
		}
		return s
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, item := range x {
			parts[i] = esc(scalarString(item))
		}
		return strings.Join(parts, sep)
	case map[string]any:
		var parts []string
		for _, k := range sortedKeys(x) {
			parts = append(parts, esc(k), esc(scalarString(x[k])))
		}
		return strings.Join(parts, sep)
	}
	return esc(scalarString(v))
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

// explode is a parameter's explode, by default true for the form style only.
func explode(p *openapi3.Parameter, style string) bool {
	if p.Explode != nil {
		return *p.Explode
	}
	return style == openapi3.SerializationForm
}

// serializePath writes a path parameter in its style: simple (the default), label (.v) or matrix (;n=v).
func serializePath(p *openapi3.Parameter, v any) string {
	style := p.Style
	if style == "" {
		style = openapi3.SerializationSimple
	}
	ex := explode(p, style)
	obj, isObj := v.(map[string]any)
	switch style {
	case openapi3.SerializationLabel:
		sep := ","
		if ex {
			sep = "."
		}
		if isObj && ex {
			return "." + pairs(obj, ".", true)
		}
		return "." + joinValue(v, sep, true)
	case openapi3.SerializationMatrix:
		name := url.PathEscape(p.Name)
		switch arr, isArr := v.([]any); {
		case isArr && ex:
			var out string
			for _, item := range arr {
				out += ";" + name + "=" + url.PathEscape(scalarString(item))
			}
			return out
		case isObj && ex:
			return ";" + pairs(obj, ";", true)
		}
		return ";" + name + "=" + joinValue(v, ",", true)
	}
	if isObj && ex {
		return pairs(obj, ",", true)
	}
	return joinValue(v, ",", true)
}

// pairs writes an object's name=value pairs joined by sep.
func pairs(obj map[string]any, sep string, path bool) string {
	esc := url.QueryEscape
	if path {
		esc = url.PathEscape
	}
	var parts []string
	for _, k := range sortedKeys(obj) {
		parts = append(parts, esc(k)+"="+esc(scalarString(obj[k])))
	}
	return strings.Join(parts, sep)
}

// serializeQuery writes a query parameter's name=value terms in its style: form (the default; exploded,
// an array's items repeat the name and an object's properties are parameters of their own),
// spaceDelimited, pipeDelimited, deepObject (name[prop]=value).
func serializeQuery(p *openapi3.Parameter, v any) []string {
	style := p.Style
	if style == "" {
		style = openapi3.SerializationForm
	}
	name := url.QueryEscape(p.Name)
	esc := func(s string) string { return url.QueryEscape(s) }
	obj, isObj := v.(map[string]any)
	arr, isArr := v.([]any)
	switch {
	case style == openapi3.SerializationDeepObject && isObj:
		var out []string
		for _, k := range sortedKeys(obj) {
			out = append(out, name+"%5B"+esc(k)+"%5D="+esc(scalarString(obj[k])))
		}
		return out
	case isObj && explode(p, style):
		return strings.Split(pairs(obj, "&", false), "&")
	case isArr && explode(p, style):
		var out []string
		for _, item := range arr {
			out = append(out, name+"="+esc(scalarString(item)))
		}
		return out
	case isArr || isObj:
		sep := ","
		switch style {
		case openapi3.SerializationSpaceDelimited:
			sep = " "
		case openapi3.SerializationPipeDelimited:
			sep = "|"
		}
		return []string{name + "=" + esc(joinValue(v, sep, false))}
	}
	return []string{name + "=" + esc(scalarString(v))}
}

// specified is what a schema says its value is: its example (or first of its examples), default, first
// enum value or const, in that order.
func specified(s *openapi3.Schema) (any, bool) {
	switch {
	case s.Example != nil:
		return s.Example, true
	case len(s.Examples) > 0 && s.Examples[0] != nil:
		return s.Examples[0], true
	case s.Default != nil:
		return s.Default, true
	case len(s.Enum) > 0:
		return s.Enum[0], true
	case s.Const != nil:
		return s.Const, true
	}
	return nil, false
}

// valueGen makes a value of a schema (see value); writing leaves out readOnly properties (a request's
// body). nodes and size bound what it makes: a document may describe huge or endless values.
type valueGen struct {
	writing bool
	nodes   int
	// size is about the size of what was made, as valueSize counts it.
	size int
}

// generate is a value of ref, or an error when it would be over MaxAPISpecValue: the value is not made
// past that bound.
func (g *valueGen) generate(ref *openapi3.SchemaRef) (any, error) {
	v := g.value(ref, 0)
	if g.size > MaxAPISpecValue {
		return nil, fmt.Errorf("a value made of its schema is over %d MiB", MaxAPISpecValue>>20)
	}
	return v, nil
}

// The bounds of a generated value: how deep it nests, how many values it holds, how many items an array
// has and how long a string is at most.
const (
	maxValueDepth  = 12
	maxValueNodes  = 10_000
	maxValueItems  = 10
	maxValueString = 4096
)

// value is a value of schema: what the schema specifies (its example, default, first enum value), else,
// for allOf the merge of its parts' objects, for oneOf and anyOf the first part's (not null), else one of
// its type (the first but null when it has several, or what its keywords imply): an object of its
// properties (the optional ones but those with a pattern and no value of their own: a made-up string
// would not match), an array of its items (minItems of them, at least one), a string of its format (a
// date, a uuid, an email address, ...) and length, a number within its bounds and multipleOf (1 when
// they allow it), true.
func (g *valueGen) value(ref *openapi3.SchemaRef, depth int) any {
	if ref == nil || ref.Value == nil {
		return "string"
	}
	s := ref.Value
	g.nodes++
	g.size += 8
	if g.size > MaxAPISpecValue {
		return nil
	}
	if v, ok := specified(s); ok {
		g.size += valueSize(v, MaxAPISpecValue)
		return v
	}
	if depth > maxValueDepth || g.nodes > maxValueNodes {
		return nil
	}
	if len(s.AllOf) > 0 {
		merged := map[string]any{}
		var last any
		for _, part := range s.AllOf {
			last = g.value(part, depth+1)
			if obj, ok := last.(map[string]any); ok {
				for k, v := range obj {
					merged[k] = v
				}
			}
		}
		if len(merged) > 0 || len(s.Properties) > 0 {
			for k, v := range g.object(s, depth) {
				merged[k] = v
			}
			return merged
		}
		return last
	}
	for _, alts := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		for _, alt := range alts {
			if alt != nil && alt.Value != nil && !(alt.Value.Type != nil && alt.Value.Type.Is(openapi3.TypeNull)) {
				return g.value(alt, depth+1)
			}
		}
	}
	typ := ""
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if t != openapi3.TypeNull {
				typ = t
				break
			}
		}
		if typ == "" && s.Type.Is(openapi3.TypeNull) {
			return nil
		}
	}
	if typ == "" {
		switch {
		case len(s.Properties) > 0:
			typ = openapi3.TypeObject
		case s.Items != nil:
			typ = openapi3.TypeArray
		case s.Min != nil || s.Max != nil:
			typ = openapi3.TypeNumber
		default:
			typ = openapi3.TypeString
		}
	}
	switch typ {
	case openapi3.TypeObject:
		return g.object(s, depth)
	case openapi3.TypeArray:
		n := int(min(max(s.MinItems, 1), maxValueItems))
		items := make([]any, n)
		for i := range items {
			items[i] = g.value(s.Items, depth+1)
		}
		return items
	case openapi3.TypeInteger:
		return int64(number(s, true))
	case openapi3.TypeNumber:
		return number(s, false)
	case openapi3.TypeBoolean:
		return true
	}
	v := stringOf(s)
	g.size += len(v)
	return v
}

// object is an object of s's properties (see value).
func (g *valueGen) object(s *openapi3.Schema, depth int) map[string]any {
	obj := map[string]any{}
	names := slices.Sorted(maps.Keys(s.Properties))
	for _, k := range names {
		p := s.Properties[k]
		if p == nil || p.Value == nil || g.writing && p.Value.ReadOnly {
			continue
		}
		if _, given := specified(p.Value); !given && p.Value.Pattern != "" && !slices.Contains(s.Required, k) {
			continue
		}
		g.size += len(k)
		obj[k] = g.value(p, depth+1)
	}
	return obj
}

// number is 1, or the nearest to it that s's minimum, maximum (inclusive or exclusive) and multipleOf allow.
func number(s *openapi3.Schema, integer bool) float64 {
	v := 1.0
	step := 1.0
	if !integer {
		step = 0.5
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if s.Min != nil {
		lo = *s.Min
		if s.ExclusiveMin.IsTrue() {
			lo += step
		}
	}
	if s.ExclusiveMin.Value != nil {
		lo = max(lo, *s.ExclusiveMin.Value+step)
	}
	if s.Max != nil {
		hi = *s.Max
		if s.ExclusiveMax.IsTrue() {
			hi -= step
		}
	}
	if s.ExclusiveMax.Value != nil {
		hi = min(hi, *s.ExclusiveMax.Value-step)
	}
	v = max(v, lo)
	v = min(v, hi)
	if integer {
		v = math.Ceil(v)
		if v > hi {
			v = math.Floor(hi)
		}
	}
	if m := s.MultipleOf; m != nil && *m > 0 {
		v = math.Ceil(v / *m) * *m
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 1
	}
	return v
}

// Strings of the formats, each one valid of its kind.
var formatStrings = map[string]string{
	"date":          "2024-01-01",
	"date-time":     "2024-01-01T00:00:00Z",
	"time":          "00:00:00Z",
	"duration":      "P1D",
	"email":         "user@example.com",
	"idn-email":     "user@example.com",
	"hostname":      "example.com",
	"ipv4":          "192.0.2.1",
	"ipv6":          "2001:db8::1",
	"uri":           "https://example.com/",
	"url":           "https://example.com/",
	"uri-reference": "/",
	"uuid":          "00000000-0000-4000-8000-000000000000",
	"byte":          "c3RyaW5n", // base64 of "string"
	"binary":        "text data",
	"password":      "password",
}

// stringOf is a string of s's format, padded with x to its minLength and cut to its maxLength.
func stringOf(s *openapi3.Schema) string {
	v, ok := formatStrings[s.Format]
	if !ok {
		v = "string"
	}
	if n := int(min(s.MinLength, maxValueString)); len(v) < n {
		v += strings.Repeat("x", n-len(v))
	}
	if s.MaxLength != nil && uint64(len(v)) > *s.MaxLength {
		v = v[:*s.MaxLength]
	}
	return v
}

// apiSpecProbes fetches each of plan.APISpecs from each of plan.Ports, as a probe (recorded with the
// others), and probes the operations of each document read on that port (over the protocol it was read
// over). A document that cannot be read (not a 2xx, too big, not OpenAPI) fails its probe, with the status
// the app gave. Nothing is fetched once MaxFailures probes failed.
func (p *prober) apiSpecProbes(ctx context.Context, plan Plan, done []ProbeResult, start time.Time) []ProbeResult {
	if len(plan.APISpecs) == 0 {
		return nil
	}
	if p.policy.MaxFailures > 0 {
		failed := 0
		for _, r := range done {
			if !r.OK() {
				failed++
			}
		}
		if failed >= p.policy.MaxFailures {
			return nil
		}
	}
	var results []ProbeResult
	for _, spec := range plan.APISpecs {
		for _, port := range plan.Ports {
			kept := &capture{limit: MaxAPISpecBytes}
			r := p.probe(withCapture(ctx, kept), HTTPCommand{Method: http.MethodGet, Resource: spec.Path}, port)
			var cmds []HTTPCommand
			if r.OK() {
				var err error
				if cmds, err = apiSpecAnswer(kept, spec); err != nil {
					r.Error = fmt.Sprintf("--http-probe-apispec %s: %v", spec.Path, err)
				}
			}
			p.status.probe(r)
			results = append(results, r)
			if r.Error != "" || ctx.Err() != nil {
				continue
			}
			jobs := make([]probeJob, len(cmds))
			for i, c := range cmds {
				if r.Proto != ProtoFastCGI {
					c.Protocol = r.Proto
				}
				jobs[i] = probeJob{c: c, port: port}
			}
			rs, _ := p.run(ctx, jobs, start)
			results = append(results, rs...)
		}
	}
	return results
}

// apiSpecAnswer reads the document an API spec probe got.
func apiSpecAnswer(c *capture, spec APISpec) ([]HTTPCommand, error) {
	switch {
	case c.status < 200 || c.status > 299:
		return nil, fmt.Errorf("status %d, not a document", c.status)
	case c.over:
		return nil, fmt.Errorf("over %d MiB", MaxAPISpecBytes>>20)
	}
	doc, err := parseAPISpec(c.body, nil)
	if err != nil {
		return nil, err
	}
	return APISpecCommands(doc, spec.Prefix)
}
