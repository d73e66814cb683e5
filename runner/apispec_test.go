package runner

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// An OpenAPI 3.0 document in YAML with a server URL of variables, path-level parameters, each place of
// parameter, each kind of body, $refs, readOnly and pattern properties, and the bounds of numbers.
const openapi3YAML = `openapi: 3.0.3
info: {title: t, version: "1"}
servers:
  - url: https://{host}/{base}
    variables:
      host: {default: api.example.com}
      base: {default: v1, enum: [v1, v2]}
paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, minimum: 10}}
    get:
      parameters:
        - {name: verbose, in: query, schema: {type: boolean}}
        - {name: fields, in: query, required: true, schema: {type: array, items: {type: string, enum: [name, price]}}}
        - {name: X-Trace, in: header, required: true, schema: {type: string, format: uuid}}
        - {name: session, in: cookie, schema: {type: string, default: abc}}
        - {name: Accept, in: header, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
    delete:
      responses: {"204": {description: gone}}
  /orders:
    post:
      requestBody:
        required: true
        content:
          application/xml: {schema: {type: object}}
          application/json:
            schema: {$ref: '#/components/schemas/Order'}
      responses: {"201": {description: made}}
  /search:
    get:
      parameters:
        - {name: q, in: query, required: true, example: hello world, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer, default: 20}}
      responses: {"200": {description: ok}}
  /upload:
    put:
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                file: {type: string, format: binary}
                title: {type: string, example: pic}
      responses: {"200": {description: ok}}
  /form:
    patch:
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                a: {type: array, items: {type: integer}, minItems: 2}
                b: {type: string, maxLength: 3}
      responses: {"200": {description: ok}}
    connect:
      responses: {"200": {description: tunnels are not probed}}
components:
  schemas:
    Order:
      type: object
      required: [item, quantity]
      properties:
        id: {type: integer, readOnly: true}
        item: {type: string, example: widget}
        quantity: {type: integer, minimum: 1, maximum: 5, multipleOf: 2}
        price: {type: number, minimum: 0, exclusiveMinimum: true}
        code: {type: string, pattern: "^[A-Z]{3}$"}
        when: {type: string, format: date-time}
        tags: {type: array, items: {type: string}}
        status: {type: string, enum: [new, paid]}
        nested:
          allOf:
            - {type: object, properties: {x: {type: integer}}}
            - {type: object, properties: {y: {type: boolean}}}
`

// A Swagger 2 document in YAML: basePath, a csv array, an enum path parameter, a body parameter.
const swaggerYAML = `swagger: "2.0"
info: {title: t, version: "1"}
basePath: /v2
paths:
  /pets/{petId}:
    get:
      parameters:
        - {name: petId, in: path, required: true, type: string, enum: [rex, tom]}
        - {name: tags, in: query, required: true, type: array, items: {type: string}, collectionFormat: csv}
      responses: {"200": {description: ok}}
  /pets:
    post:
      consumes: [application/json]
      parameters:
        - {name: body, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses: {"201": {description: made}}
definitions:
  Pet: {type: object, properties: {name: {type: string, example: rex}, age: {type: integer, default: 3}}}
`

// A Swagger 2 document in JSON with a host (its base path is the server URL's path) and a form's file.
const swaggerJSON = `{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "host": "api.example.com", "basePath": "/base",
 "schemes": ["https"], "paths": {"/up": {"post": {"consumes": ["multipart/form-data"], "parameters": [
   {"name": "file", "in": "formData", "type": "file", "required": true}, {"name": "note", "in": "formData", "type": "string"}],
   "responses": {"200": {"description": "ok"}}}}}}`

// An OpenAPI 3.1 document in JSON: type arrays with null, schema examples, named examples, a matrix path
// parameter, a parameter with content.
const openapi31JSON = `{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {
 "/n": {"get": {"parameters": [{"name": "v", "in": "query", "required": true, "schema": {"type": ["null", "integer"], "examples": [7]}},
   {"name": "w", "in": "query", "examples": {"b": {"value": "second"}, "a": {"value": "first"}}, "schema": {"type": "string"}},
   {"name": "filter", "in": "query", "required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"k": {"type": "string", "const": "c"}}}}}}]}},
 "/m/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "required": true, "style": "matrix", "explode": true,
   "schema": {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 4}}}]}}}}`

func commandLines(cmds []HTTPCommand) []string {
	var out []string
	for _, c := range cmds {
		line := c.Method + " " + c.Resource
		for _, h := range c.Headers {
			if !strings.HasPrefix(h, "Content-Type: multipart") {
				line += " [" + h + "]"
			}
		}
		if c.Body != "" && !strings.Contains(c.Body, multipartBoundary) {
			line += " " + c.Body
		}
		out = append(out, line)
	}
	return out
}

func specCommands(t *testing.T, doc, prefix string) []HTTPCommand {
	t.Helper()
	d, err := parseAPISpec([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := APISpecCommands(d, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return cmds
}

func TestAPISpecCommands(t *testing.T) {
	v1 := []string{
		"GET /v1/items/10?fields=name [X-Trace: 00000000-0000-4000-8000-000000000000] [Cookie: session=abc]",
		"GET /v1/search?q=hello+world&limit=20",
		"PATCH /v1/form [Content-Type: application/x-www-form-urlencoded] a=1&a=1&b=str",
		`POST /v1/orders [Content-Type: application/json] {"item":"widget","nested":{"x":1,"y":true},"price":1,"quantity":2,"status":"new","tags":["string"],"when":"2024-01-01T00:00:00Z"}`,
		"PUT /v1/upload",
		"DELETE /v1/items/10",
	}
	var api []string
	for _, l := range v1 {
		api = append(api, strings.Replace(l, " /v1/", " /api/", 1))
	}
	for _, tc := range []struct {
		name, doc, prefix string
		want              []string
	}{
		{"OpenAPI 3 YAML", openapi3YAML, "", v1},
		{"PREFIX replaces the base path", openapi3YAML, "/api/", api},
		{"Swagger 2 YAML", swaggerYAML, "", []string{
			"GET /v2/pets/rex?tags=string",
			`POST /v2/pets [Content-Type: application/json] {"age":3,"name":"rex"}`,
		}},
		{"PREFIX / drops it", swaggerYAML, "/", []string{
			"GET /pets/rex?tags=string",
			`POST /pets [Content-Type: application/json] {"age":3,"name":"rex"}`,
		}},
		{"Swagger 2 JSON", swaggerJSON, "", []string{"POST /base/up"}},
		{"OpenAPI 3.1 JSON", openapi31JSON, "", []string{
			"GET /m/;id=5",
			`GET /n?v=7&w=first&filter=%7B%22k%22%3A%22c%22%7D`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commandLines(specCommands(t, tc.doc, tc.prefix)); !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// The multipart bodies: a binary property is a file, the others fields; the content type names the
// boundary, and the body reads back as a form.
func TestAPISpecMultipart(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		method    string
		file      string
		fields    map[string]string
	}{
		{"OpenAPI 3", openapi3YAML, "PUT", "file", map[string]string{"title": "pic"}},
		{"Swagger 2 formData", swaggerJSON, "POST", "file", map[string]string{"note": "string"}},
	} {
		var c *HTTPCommand
		for _, x := range specCommands(t, tc.doc, "") {
			if x.Method == tc.method {
				c = &x
			}
		}
		if c == nil {
			t.Fatalf("%s: no %s", tc.name, tc.method)
		}
		req, err := c.request(t.Context(), "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		_, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		r := multipart.NewReader(req.Body, params["boundary"])
		files, fields := map[string]string{}, map[string]string{}
		for {
			part, err := r.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			b, _ := io.ReadAll(part)
			if part.FileName() != "" {
				files[part.FormName()] = part.FileName() + ":" + string(b)
			} else {
				fields[part.FormName()] = string(b)
			}
		}
		if files[tc.file] != "file.data:text data" || !mapsEqual(fields, tc.fields) {
			t.Errorf("%s: files %v, fields %v", tc.name, files, fields)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAPISpecErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"not a spec", "hello: world\n", "neither an OpenAPI 3 document"},
		{"not YAML", "{\"openapi\": \"3.0.0\",", "not JSON or YAML"},
		{"OpenAPI 4", "openapi: 4.0.0\npaths: {}\n", "neither"},
		{"no paths", "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths: {}\n", "no paths"},
		{"a broken $ref", "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /a:\n    get:\n      parameters: [{$ref: '#/components/parameters/nope'}]\n", "nope"},
		// The app's document may not send slimoci reading the host's files.
		{"a $ref to a file", "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /a:\n    get:\n      parameters: [{$ref: '/etc/passwd#/x'}]\n", "/etc/passwd"},
	} {
		_, err := parseAPISpec([]byte(tc.doc), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	bad := "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /a:\n    get:\n      parameters: [{name: h, in: header, required: true, example: \"two\\nlines\"}]\n"
	d, err := parseAPISpec([]byte(bad), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := APISpecCommands(d, ""); err == nil || !strings.Contains(err.Error(), "GET /a: header") {
		t.Errorf("a header with a line break: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "no path"},
		{"openapi.json", "does not start with /"},
		{"/openapi.json:api", "prefix \"api\" does not start with /"},
		{"/openapi.json:/a?b", "not a path"},
		{"/open api.json", "space"},
	} {
		if _, err := ParseAPISpec(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAPISpec(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
	if s, err := ParseAPISpec("/docs/openapi.yaml:/api/v2"); err != nil || s != (APISpec{Path: "/docs/openapi.yaml", Prefix: "/api/v2"}) {
		t.Errorf("ParseAPISpec: %+v, %v", s, err)
	}
}

// A file's $refs may name files beside it (the file is the user's); FILE:PREFIX.
func TestReadAPISpecFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "schemas.yaml"), []byte("Thing: {type: object, properties: {n: {type: integer, example: 5}}}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "api.yaml"), []byte(`openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: /from-the-spec}]
paths:
  /things:
    post:
      requestBody: {content: {application/json: {schema: {$ref: './schemas.yaml#/Thing'}}}}
      responses: {"200": {description: ok}}
`), 0o644)
	cmds, err := ReadAPISpecFile(filepath.Join(dir, "api.yaml") + ":/mine")
	if got := commandLines(cmds); err != nil || !slices.Equal(got, []string{`POST /mine/things [Content-Type: application/json] {"n":5}`}) {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := ReadAPISpecFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := ReadAPISpecFile(filepath.Join(dir, "schemas.yaml")); err == nil || !strings.Contains(err.Error(), "schemas.yaml: neither") {
		t.Errorf("not a spec: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte("openapi: 3.0.3\n#"+strings.Repeat("x", MaxAPISpecBytes)), 0o644)
	if _, err := ReadAPISpecFile(big); err == nil || !strings.Contains(err.Error(), "over 16 MiB") {
		t.Errorf("a big file: %v", err)
	}
}

// Fetched from the app: the document's probe is recorded with the others, then each operation is probed
// on that port; a document that is not one fails its probe with the app's status.
func TestAPISpecProbes(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s", r.Method, r.URL.RequestURI(), body))
		mu.Unlock()
		switch r.URL.Path {
		case "/openapi.yaml":
			io.WriteString(w, swaggerYAML)
		case "/not-a-spec":
			io.WriteString(w, "<html>hello</html>")
		case "/v2/pets":
			w.WriteHeader(http.StatusCreated)
		case "/x/pets/rex":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := portOf(t, srv.URL)
	p := testProber(ProbePolicy{Attempts: 1})
	plan := Plan{Ports: []int{port}, APISpecs: []APISpec{{Path: "/openapi.yaml"}, {Path: "/openapi.yaml", Prefix: "/x"}, {Path: "/missing.json"}, {Path: "/not-a-spec"}}}
	results := p.apiSpecProbes(t.Context(), plan, nil, time.Now())
	var got []string
	for _, r := range results {
		got = append(got, fmt.Sprintf("%s %s %d %q", r.Method, r.Path, r.Status, r.Error))
	}
	want := []string{
		`GET /openapi.yaml 200 ""`, `GET /v2/pets/rex?tags=string 404 ""`, `POST /v2/pets 201 ""`,
		`GET /openapi.yaml 200 ""`, `GET /x/pets/rex?tags=string 200 ""`, `POST /x/pets 404 ""`,
		`GET /missing.json 404 "--http-probe-apispec /missing.json: status 404, not a document"`,
		`GET /not-a-spec 200 "--http-probe-apispec /not-a-spec: not JSON or YAML` + "",
	}
	if len(got) != len(want) {
		t.Fatalf("results\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], strings.TrimSuffix(want[i], `"`)) {
			t.Errorf("result %d: %s, want %s", i, got[i], want[i])
		}
	}
	if v := probeVerdict(p.policy, results); !strings.Contains(v, "probe GET :") || !strings.Contains(v, "/missing.json: --http-probe-apispec /missing.json: status 404") {
		t.Errorf("the verdict: %q, want the spec that could not be read failing the observation", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, `POST /v2/pets {"age":3,"name":"rex"}`) {
		t.Errorf("the app saw %q", seen)
	}
}

// A hostile document describes huge requests in a few lines: an example shared by $ref by many operations,
// a schema whose minItems, minLength and recursion multiply. It is refused, naming the operation, and
// reading it allocates a bound, not what it describes.
func TestAPISpecHostileValues(t *testing.T) {
	var paths strings.Builder
	for i := range 400 {
		fmt.Fprintf(&paths, "  /o%03d: {post: {requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Big'}}}}, responses: {\"200\": {description: ok}}}}\n", i)
	}
	shared := `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
` + paths.String() + `components: {schemas: {Big: {type: string, example: "` + strings.Repeat("x", 900<<10) + `"}}}
`
	for _, tc := range []struct {
		name, doc, want string
		alloc           uint64
	}{
		{"a shared example of 900 KiB, 400 operations", shared, "POST /o072: the requests of the operations up to it are over 64 MiB", 4 * MaxAPISpecRequests},
		{"an example of 2 MiB", `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /a: {get: {parameters: [{name: q, in: query, example: "` + strings.Repeat("x", 2<<20) + `"}], responses: {"200": {description: ok}}}}
`, "GET /a: parameter q: a value of over 1 MiB", 8 << 20},
		{"a schema of minItems, minLength and recursion", `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /tree: {put: {requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Node'}}}}, responses: {"200": {description: ok}}}}
components:
  schemas:
    Node:
      type: object
      properties:
        s: {type: string, minLength: 4096}
        kids: {type: array, minItems: 10, items: {$ref: '#/components/schemas/Node'}}
`, "PUT /tree: request body: application/json: a value made of its schema is over 1 MiB", 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := parseAPISpec([]byte(tc.doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = APISpecCommands(doc, "")
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d MiB", alloc>>20)
			if alloc > tc.alloc {
				t.Errorf("allocated %d MiB making the requests, want under %d MiB", alloc>>20, tc.alloc>>20)
			}
		})
	}
}

// A file's $refs are read under its directory only: not over http, not by .., not by an absolute path
// elsewhere.
func TestReadAPISpecFileRefs(t *testing.T) {
	asked := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = true
		fmt.Fprint(w, "Thing: {type: object}\n")
	}))
	defer srv.Close()
	top := t.TempDir()
	dir := filepath.Join(top, "spec")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(top, "outside.yaml"), []byte("Thing: {type: object}\n"), 0o644)
	for name, ref := range map[string]string{
		"http":     srv.URL + "/schemas.yaml#/Thing",
		"dotdot":   "../outside.yaml#/Thing",
		"absolute": filepath.Join(top, "outside.yaml") + "#/Thing",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name+".yaml")
			os.WriteFile(file, []byte(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things:
    post:
      requestBody: {content: {application/json: {schema: {$ref: '`+ref+`'}}}}
      responses: {"200": {description: ok}}
`), 0o644)
			_, err := ReadAPISpecFile(file)
			if err == nil || !strings.Contains(err.Error(), "$ref") || strings.Contains(err.Error(), "\n") {
				t.Errorf("a $ref to %s: %v, want a one-line error naming the $ref", ref, err)
			}
		})
	}
	if asked {
		t.Error("the http $ref was fetched")
	}
}
