/*
Copyright 2026 The Clearance Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/clearance-dev/clearance/docs"
)

// The Developers page (docs/console.md): the verifier's OpenAPI document, the very bytes the
// verifier serves at /openapi.json (docs.OpenAPI), rendered as docs with a curl and a Go example
// per route, and a tester that sends one request with a pasted key to the verifier, server-side,
// and shows its answer. The key lives in that one request: it is not kept, logged, or written
// into any page.

// apiDoc is the document as the page shows it.
type apiDoc struct {
	Title, Version, Description string
	// Server is the document's own server URL: the examples' base without --console-verifier-url.
	Server  string
	Groups  []apiGroup
	Reasons []apiReason
	// byID finds a route by its operationId.
	byID map[string]*apiRoute
}

// apiGroup is the routes of one tag, in the document's order.
type apiGroup struct {
	Tag    string
	Routes []*apiRoute
}

// apiRoute is one operation: a method on a path.
type apiRoute struct {
	ID, Method, Path, Summary, Description string
	Params                                 []apiParam
	Body                                   *apiBody
	// Credentials are the ways to authenticate, one of which is needed unless Optional.
	Credentials []string
	Optional    bool
	Responses   []apiResponse
	// security is the first way to authenticate, the one the examples use.
	security *apiScheme
}

// apiParam is a query, header or path parameter, or a field of a request body.
type apiParam struct {
	Name, In, Type, Description, Example string
	Required                             bool
	Enum                                 []string
}

// apiBody is a request body.
type apiBody struct {
	ContentType string
	Fields      []apiParam
}

// apiResponse is one status a route answers, with the headers it sets and the reasons it
// names.
type apiResponse struct {
	Status, Description string
	Headers             []string
	Reasons             []string
}

// apiReason is one of the verifier's reasons, the status it comes with and what it means.
type apiReason struct {
	Reason, Status, Meaning string
}

// apiScheme is a security scheme of the document.
type apiScheme struct {
	Type, In, Name, Scheme, Description string
}

// verifierAPI is docs.OpenAPI parsed, once: the document is compiled into the binary, so its
// parse is as fixed as the templates are.
var verifierAPI = sync.OnceValues(func() (*apiDoc, error) { return parseAPIDoc(docs.OpenAPI) })

// The document's JSON, as far as the page reads it. Objects whose order the page keeps (paths,
// methods, properties, headers) stay raw and are walked with orderedKeys.
type (
	oaDocument struct {
		Info struct {
			Title, Version, Description string
		} `json:"info"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths      json.RawMessage `json:"paths"`
		Components struct {
			Parameters      map[string]oaParameter `json:"parameters"`
			Schemas         map[string]oaSchema    `json:"schemas"`
			SecuritySchemes map[string]apiScheme   `json:"securitySchemes"`
		} `json:"components"`
	}
	oaOperation struct {
		OperationID string                `json:"operationId"`
		Tags        []string              `json:"tags"`
		Summary     string                `json:"summary"`
		Description string                `json:"description"`
		Parameters  []oaParameter         `json:"parameters"`
		Security    []map[string][]string `json:"security"`
		RequestBody *struct {
			Content json.RawMessage `json:"content"`
		} `json:"requestBody"`
		Responses json.RawMessage `json:"responses"`
	}
	oaParameter struct {
		Ref         string   `json:"$ref"`
		Name        string   `json:"name"`
		In          string   `json:"in"`
		Required    bool     `json:"required"`
		Description string   `json:"description"`
		Schema      oaSchema `json:"schema"`
		Example     any      `json:"example"`
	}
	oaSchema struct {
		Ref         string          `json:"$ref"`
		Type        any             `json:"type"`
		Enum        []any           `json:"enum"`
		Const       any             `json:"const"`
		Description string          `json:"description"`
		Required    []string        `json:"required"`
		Properties  json.RawMessage `json:"properties"`
	}
	oaResponse struct {
		Description string          `json:"description"`
		Headers     json.RawMessage `json:"headers"`
	}
)

// parseAPIDoc reads an OpenAPI 3.1 document into what the page shows, resolving the local
// references (#/components/...) it uses. A route or reference it cannot read is an error, so a
// change to the document that the page would show wrong fails the console's tests.
func parseAPIDoc(data []byte) (*apiDoc, error) {
	var d oaDocument
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("the OpenAPI document: %w", err)
	}
	doc := &apiDoc{Title: d.Info.Title, Version: d.Info.Version, Description: d.Info.Description, byID: map[string]*apiRoute{}}
	if len(d.Servers) > 0 {
		doc.Server = strings.TrimSuffix(d.Servers[0].URL, "/")
	}
	reason := d.Components.Schemas["Reason"]
	doc.Reasons = reasonsOf(reason)
	known := map[string]bool{}
	for _, r := range doc.Reasons {
		known[r.Reason] = true
	}
	paths, err := orderedKeys(d.Paths)
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI document's paths: %w", err)
	}
	for _, path := range paths {
		ops, err := orderedKeys(path.value)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", path.key, err)
		}
		for _, op := range ops {
			if !slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, op.key) {
				continue // path-level parameters, summary, servers
			}
			route, tag, err := parseRoute(&d, path.key, op, known)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", strings.ToUpper(op.key), path.key, err)
			}
			if doc.byID[route.ID] != nil {
				return nil, fmt.Errorf("%s %s: operationId %s is used twice", route.Method, route.Path, route.ID)
			}
			doc.byID[route.ID] = route
			i := slices.IndexFunc(doc.Groups, func(g apiGroup) bool { return g.Tag == tag })
			if i < 0 {
				doc.Groups = append(doc.Groups, apiGroup{Tag: tag})
				i = len(doc.Groups) - 1
			}
			doc.Groups[i].Routes = append(doc.Groups[i].Routes, route)
		}
	}
	return doc, nil
}

// parseRoute reads one operation.
func parseRoute(d *oaDocument, path string, op keyValue, known map[string]bool) (*apiRoute, string, error) {
	var o oaOperation
	if err := json.Unmarshal(op.value, &o); err != nil {
		return nil, "", err
	}
	if o.OperationID == "" {
		return nil, "", errors.New("no operationId")
	}
	r := &apiRoute{ID: o.OperationID, Method: strings.ToUpper(op.key), Path: path, Summary: o.Summary, Description: o.Description}
	for _, p := range o.Parameters {
		if p.Ref != "" {
			var ok bool
			if p, ok = d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]; !ok {
				return nil, "", fmt.Errorf("no parameter %s", p.Ref)
			}
		}
		r.Params = append(r.Params, apiParam{Name: p.Name, In: p.In, Required: p.Required, Description: p.Description,
			Type: typeOf(p.Schema), Enum: texts(p.Schema.Enum), Example: text(p.Example)})
	}
	if o.RequestBody != nil {
		body, err := parseBody(d, o.RequestBody.Content)
		if err != nil {
			return nil, "", err
		}
		r.Body = body
	}
	for _, req := range o.Security {
		if len(req) == 0 {
			r.Optional = true
			continue
		}
		for name := range req {
			scheme, ok := d.Components.SecuritySchemes[name]
			if !ok {
				return nil, "", fmt.Errorf("no security scheme %s", name)
			}
			if r.security == nil {
				r.security = &scheme
			}
			r.Credentials = append(r.Credentials, credentialText(scheme))
		}
	}
	responses, err := orderedKeys(o.Responses)
	if err != nil {
		return nil, "", fmt.Errorf("responses: %w", err)
	}
	for _, kv := range responses {
		var resp oaResponse
		if err := json.Unmarshal(kv.value, &resp); err != nil {
			return nil, "", fmt.Errorf("response %s: %w", kv.key, err)
		}
		headers, err := orderedKeys(resp.Headers)
		if err != nil {
			return nil, "", fmt.Errorf("response %s: %w", kv.key, err)
		}
		out := apiResponse{Status: kv.key, Description: resp.Description}
		for _, h := range headers {
			out.Headers = append(out.Headers, h.key)
		}
		for _, w := range reasonWord.FindAllString(resp.Description, -1) {
			if known[w] && !slices.Contains(out.Reasons, w) {
				out.Reasons = append(out.Reasons, w)
			}
		}
		r.Responses = append(r.Responses, out)
	}
	tag := "other"
	if len(o.Tags) > 0 {
		tag = o.Tags[0]
	}
	return r, tag, nil
}

// parseBody reads a request body's first content type and the fields of its schema, the
// required ones first.
func parseBody(d *oaDocument, content json.RawMessage) (*apiBody, error) {
	types, err := orderedKeys(content)
	if err != nil || len(types) == 0 {
		return nil, fmt.Errorf("a request body without content: %v", err)
	}
	var media struct {
		Schema oaSchema `json:"schema"`
	}
	if err := json.Unmarshal(types[0].value, &media); err != nil {
		return nil, err
	}
	schema := media.Schema
	if schema.Ref != "" {
		var ok bool
		if schema, ok = d.Components.Schemas[strings.TrimPrefix(schema.Ref, "#/components/schemas/")]; !ok {
			return nil, fmt.Errorf("no schema %s", media.Schema.Ref)
		}
	}
	props, err := orderedKeys(schema.Properties)
	if err != nil {
		return nil, err
	}
	body := &apiBody{ContentType: types[0].key}
	for _, kv := range props {
		var s oaSchema
		if err := json.Unmarshal(kv.value, &s); err != nil {
			return nil, fmt.Errorf("field %s: %w", kv.key, err)
		}
		f := apiParam{Name: kv.key, In: "body", Required: slices.Contains(schema.Required, kv.key), Type: typeOf(s), Enum: texts(s.Enum), Description: s.Description}
		if p, ok := d.Components.Parameters[kv.key]; ok { // the same name as a query parameter: its example and meaning
			f.Example = text(p.Example)
			if f.Description == "" {
				f.Description = p.Description
			}
		}
		body.Fields = append(body.Fields, f)
	}
	slices.SortStableFunc(body.Fields, func(a, b apiParam) int {
		switch {
		case a.Required == b.Required:
			return 0
		case a.Required:
			return -1
		}
		return 1
	})
	return body, nil
}

// reasonEntry finds "key_unknown (401): " in the Reason schema's description: each reason, its
// status and, up to the next one, its meaning.
var (
	reasonEntry = regexp.MustCompile(`([a-z][a-z_]+) \((\d{3})\): `)
	reasonWord  = regexp.MustCompile(`[a-z][a-z_]+`)
)

// reasonsOf lists the Reason schema's values with their status and meaning.
func reasonsOf(s oaSchema) []apiReason {
	meaning := map[string][2]string{}
	found := reasonEntry.FindAllStringSubmatchIndex(s.Description, -1)
	for i, m := range found {
		end := len(s.Description)
		if i+1 < len(found) {
			end = found[i+1][0]
		}
		text := strings.TrimSpace(s.Description[m[1]:end])
		if text != "" { // a sentence of its own on the page
			text = strings.ToUpper(text[:1]) + text[1:]
		}
		meaning[s.Description[m[2]:m[3]]] = [2]string{s.Description[m[4]:m[5]], text}
	}
	var out []apiReason
	for _, r := range texts(s.Enum) {
		out = append(out, apiReason{Reason: r, Status: meaning[r][0], Meaning: meaning[r][1]})
	}
	return out
}

// credentialText says how a security scheme authenticates.
func credentialText(s apiScheme) string {
	var out string
	switch s.Type {
	case "apiKey":
		if strings.HasPrefix(s.Description, s.Name+":") {
			return s.Description
		}
		out = "the " + s.Name + " " + s.In
		if s.Description != "" {
			return out + ", " + s.Description
		}
		return out
	case "http":
		out = "HTTP " + strings.ToUpper(s.Scheme[:1]) + s.Scheme[1:]
	default:
		return s.Description
	}
	if s.Description != "" {
		out += ": " + s.Description
	}
	return out
}

// typeOf is a schema's type as the page writes it.
func typeOf(s oaSchema) string {
	switch t := s.Type.(type) {
	case string:
		return t
	case []any:
		return strings.Join(texts(t), " or ")
	}
	switch {
	case s.Const != nil:
		return "= " + text(s.Const)
	case s.Ref != "":
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	case len(s.Enum) > 0:
		return "string"
	}
	return ""
}

func text(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func texts(vs []any) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, text(v))
	}
	return out
}

// keyValue is one member of a JSON object.
type keyValue struct {
	key   string
	value json.RawMessage
}

// orderedKeys reads a JSON object's members in the order they are written (a Go map would
// lose it, and the document's order is the one it reads best in). Nothing: none.
func orderedKeys(raw json.RawMessage) ([]keyValue, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v", err)
	}
	var out []keyValue
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, keyValue{key: t.(string), value: v})
	}
	return out, nil
}

// The examples read what they cannot know from the environment, so nothing secret is ever
// written into them, and a partner copies them as they are.
const (
	envKey       = "CLEARANCE_KEY"
	envAccessKey = "CLEARANCE_ACCESS_KEY"
	envSecretKey = "CLEARANCE_SECRET_KEY"
)

// exampleArg is a value an example sends: Literal, then the value of the environment variable
// Env when it names one.
type exampleArg struct {
	Name, Literal, Env string
}

// exampleRequest is what both examples of a route send.
type exampleRequest struct {
	Method  string
	Path    []exampleArg // the path: literal pieces and path parameters (Env)
	Query   []exampleArg
	Headers []exampleArg
	// Basic sends the key's access key and secret key by HTTP Basic.
	Basic bool
	// JSON or Form is the body's encoding, with Fields.
	JSON, Form bool
	Fields     []exampleArg
	// NoRedirect: the route answers with a redirect, which the examples show rather than follow.
	NoRedirect bool
}

// pathParam is a {name} in a path.
var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// exampleOf is what a route's examples send: its required parameters and those with an example
// in the document, the first way to authenticate, and a body of its required fields and those
// with an example. Envoy's form (a client path after /v1/authorize) reads its parameters from
// headers only: a query parameter with an X-Clearance- twin goes there on a route with a path
// parameter.
func exampleOf(r *apiRoute) exampleRequest {
	ex := exampleRequest{Method: r.Method}
	last := 0
	for _, m := range pathParam.FindAllStringSubmatchIndex(r.Path, -1) {
		ex.Path = append(ex.Path, exampleArg{Literal: r.Path[last:m[0]]}, exampleArg{Name: r.Path[m[2]:m[3]], Env: envFor(r.Path[m[2]:m[3]])})
		last = m[1]
	}
	if last < len(r.Path) {
		ex.Path = append(ex.Path, exampleArg{Literal: r.Path[last:]})
	}
	hasPathParam := last > 0
	twins := map[string]bool{}
	for _, p := range r.Params {
		if p.In == "header" {
			twins[p.Name] = true
		}
	}
	for _, p := range r.Params {
		if p.In != "query" || (!p.Required && p.Example == "") {
			continue
		}
		arg := argFor(p)
		if twin := "X-Clearance-" + headerCase(p.Name); hasPathParam && twins[twin] {
			arg.Name = twin
			ex.Headers = append(ex.Headers, arg)
			continue
		}
		ex.Query = append(ex.Query, arg)
	}
	if s := r.security; s != nil {
		switch {
		case s.Type == "http" && strings.EqualFold(s.Scheme, "basic"):
			ex.Basic = true
		case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
			ex.Headers = append(ex.Headers, exampleArg{Name: "Authorization", Literal: "Bearer ", Env: envKey})
		case s.Type == "apiKey" && s.In == "header" && strings.EqualFold(s.Name, "Authorization"):
			ex.Headers = append(ex.Headers, exampleArg{Name: "Authorization", Literal: "api-key ", Env: envKey})
		case s.Type == "apiKey" && s.In == "header":
			ex.Headers = append(ex.Headers, exampleArg{Name: s.Name, Env: envKey})
		}
	}
	if b := r.Body; b != nil {
		ex.JSON = strings.Contains(b.ContentType, "json")
		ex.Form = b.ContentType == "application/x-www-form-urlencoded"
		for _, f := range b.Fields {
			if f.Required || f.Example != "" {
				ex.Fields = append(ex.Fields, argFor(f))
			}
		}
	}
	for _, resp := range r.Responses {
		ex.NoRedirect = ex.NoRedirect || strings.HasPrefix(resp.Status, "3")
	}
	return ex
}

// argFor is the value an example gives a parameter: the document's example, else an enum's
// first value, else an environment variable.
func argFor(p apiParam) exampleArg {
	switch {
	case p.Example != "":
		return exampleArg{Name: p.Name, Literal: p.Example}
	case len(p.Enum) > 0:
		return exampleArg{Name: p.Name, Literal: p.Enum[0]}
	}
	return exampleArg{Name: p.Name, Env: envFor(p.Name)}
}

// envFor names the environment variable of a value: the key for a field named key, an access
// token for one named token, else the name in capitals (client_id: CLIENT_ID, clientPath:
// CLIENT_PATH).
func envFor(name string) string {
	switch name {
	case "key":
		return envKey
	case "token":
		return "ACCESS_TOKEN"
	}
	var b strings.Builder
	for i, c := range name {
		if unicode.IsUpper(c) && i > 0 {
			b.WriteByte('_')
		}
		if c == '-' {
			c = '_'
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}

// headerCase writes a parameter's name as a header's: minRole is Min-Role.
func headerCase(name string) string {
	var b strings.Builder
	for i, c := range name {
		switch {
		case i == 0:
			c = unicode.ToUpper(c)
		case unicode.IsUpper(c):
			b.WriteByte('-')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// shellEscape escapes what a shell reads inside double quotes.
var shellEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")

// shellQuoted is literal inside double quotes, followed by $env as a shell variable.
func shellQuoted(literal, env string) string {
	s := shellEscape.Replace(literal)
	if env != "" {
		s += "${" + env + "}"
	}
	return `"` + s + `"`
}

// curlExample is the route's request as a curl command against base.
func curlExample(base string, ex exampleRequest) string {
	target := shellEscape.Replace(base)
	for _, p := range ex.Path {
		target += shellEscape.Replace(p.Literal)
		if p.Env != "" {
			target += "${" + p.Env + "}"
		}
	}
	lines := []string{"curl -sS -i"}
	inferred := http.MethodGet
	if len(ex.Query) > 0 {
		lines[0] += " -G"
	} else if len(ex.Fields) > 0 {
		inferred = http.MethodPost
	}
	if ex.Method != inferred {
		lines[0] += " -X " + ex.Method
	}
	lines[0] += ` "` + target + `"`
	for _, q := range ex.Query {
		lines = append(lines, "--data-urlencode "+shellQuoted(q.Name+"="+q.Literal, q.Env))
	}
	for _, h := range ex.Headers {
		lines = append(lines, "-H "+shellQuoted(h.Name+": "+h.Literal, h.Env))
	}
	if ex.Basic {
		lines = append(lines, `-u "${`+envAccessKey+`}:${`+envSecretKey+`}"`)
	}
	if ex.Form {
		for _, f := range ex.Fields {
			lines = append(lines, "--data-urlencode "+shellQuoted(f.Name+"="+f.Literal, f.Env))
		}
	}
	if ex.JSON {
		var members []string
		for _, f := range ex.Fields {
			v := f.Literal
			if f.Env != "" {
				v += "${" + f.Env + "}"
			}
			members = append(members, fmt.Sprintf("  %q: %q", f.Name, v))
		}
		lines = append(lines, `-H "Content-Type: application/json"`, "--data @- <<EOF\n{\n"+strings.Join(members, ",\n")+"\n}\nEOF")
	}
	return strings.Join(lines, " \\\n  ")
}

// goMethods names the net/http constant of a method.
var goMethods = map[string]string{
	http.MethodGet: "http.MethodGet", http.MethodHead: "http.MethodHead", http.MethodPost: "http.MethodPost",
	http.MethodPut: "http.MethodPut", http.MethodPatch: "http.MethodPatch", http.MethodDelete: "http.MethodDelete",
	http.MethodOptions: "http.MethodOptions", http.MethodTrace: "http.MethodTrace",
}

// goValue is a Go expression of an example's value.
func goValue(a exampleArg, imports map[string]bool) string {
	env := ""
	if a.Env != "" {
		imports["os"] = true
		env = `os.Getenv("` + a.Env + `")`
	}
	switch {
	case a.Literal == "":
		return env
	case env == "":
		return fmt.Sprintf("%q", a.Literal)
	}
	return fmt.Sprintf("%q+%s", a.Literal, env)
}

// goExample is the route's request as a Go program using net/http against base.
func goExample(base string, ex exampleRequest) string {
	imports := map[string]bool{"fmt": true, "io": true, "log": true, "net/http": true, "time": true}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	// The URL: string literals merged, path parameters escaped.
	var parts []string
	literal := base
	for _, p := range ex.Path {
		literal += p.Literal
		if p.Env != "" {
			imports["net/url"] = true
			parts = append(parts, fmt.Sprintf("%q", literal), "url.PathEscape("+goValue(exampleArg{Env: p.Env}, imports)+")")
			literal = ""
		}
	}
	if literal != "" {
		parts = append(parts, fmt.Sprintf("%q", literal))
	}
	target := strings.Join(parts, "+")
	if len(ex.Query) > 0 {
		imports["net/url"] = true
		w("\tquery := url.Values{}\n")
		for _, q := range ex.Query {
			w("\tquery.Set(%q, %s)\n", q.Name, goValue(q, imports))
		}
		target += `+"?"+query.Encode()`
	}
	body := "nil"
	switch {
	case ex.JSON:
		imports["bytes"], imports["encoding/json"] = true, true
		w("\tpayload, err := json.Marshal(map[string]string{\n")
		for _, f := range ex.Fields {
			w("\t\t%q: %s,\n", f.Name, goValue(f, imports))
		}
		w("\t})\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
		body = "bytes.NewReader(payload)"
	case ex.Form:
		imports["net/url"], imports["strings"] = true, true
		w("\tform := url.Values{}\n")
		for _, f := range ex.Fields {
			w("\tform.Set(%q, %s)\n", f.Name, goValue(f, imports))
		}
		body = "strings.NewReader(form.Encode())"
	}
	method, ok := goMethods[ex.Method]
	if !ok {
		method = fmt.Sprintf("%q", ex.Method)
	}
	w("\treq, err := http.NewRequest(%s, %s, %s)\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n", method, target, body)
	switch {
	case ex.JSON:
		w("\treq.Header.Set(\"Content-Type\", \"application/json\")\n")
	case ex.Form:
		w("\treq.Header.Set(\"Content-Type\", \"application/x-www-form-urlencoded\")\n")
	}
	for _, h := range ex.Headers {
		w("\treq.Header.Set(%q, %s)\n", h.Name, goValue(h, imports))
	}
	if ex.Basic {
		imports["net/url"], imports["os"] = true, true
		w("\t// Each half form-encoded first, as OAuth 2.0's client_secret_basic asks.\n")
		w("\treq.SetBasicAuth(url.QueryEscape(os.Getenv(%q)), url.QueryEscape(os.Getenv(%q)))\n", envAccessKey, envSecretKey)
	}
	w("\tclient := &http.Client{Timeout: 10 * time.Second}\n")
	if ex.NoRedirect {
		w("\t// Show the redirect rather than follow it.\n")
		w("\tclient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }\n")
	}
	w("\tresp, err := client.Do(req)\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tdefer resp.Body.Close()\n")
	w("\tanswer, err := io.ReadAll(resp.Body)\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n")
	w("\t// The status, and the reason of a refusal (X-Clearance-Reason on forward-auth).\n")
	w("\tfmt.Println(resp.Status, resp.Header.Get(\"X-Clearance-Reason\"))\n")
	w("\tfmt.Println(string(answer))\n")
	names := make([]string, 0, len(imports))
	for name := range imports {
		names = append(names, name)
	}
	slices.Sort(names)
	var head strings.Builder
	head.WriteString("package main\n\nimport (\n")
	for _, name := range names {
		fmt.Fprintf(&head, "\t%q\n", name)
	}
	head.WriteString(")\n\nfunc main() {\n")
	src := head.String() + b.String() + "}\n"
	if formatted, err := format.Source([]byte(src)); err == nil {
		return string(formatted)
	}
	return src // the tests compile every example: a program gofmt cannot read fails them
}

// testerRoutes are the routes the tester offers, by operationId: the two that check a key for
// an org, a role, a scope, a metric and a method.
var testerRoutes = []string{"authorizeGet", "verifyKey"}

// testerMethods are the client methods the tester offers: the method sets the least role when
// minRole is not given.
var testerMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// testerTimeout bounds what the tester waits for the verifier.
const testerTimeout = 5 * time.Second

// maxTesterKey bounds a pasted key (an access token is the longest credential).
const maxTesterKey = 8192

// developersData is the Developers page.
type developersData struct {
	Title, Version, Description string
	// Base is the verifier's base URL in the examples; OpenAPI is where it serves the document.
	Base, OpenAPI string
	Groups        []groupView
	Reasons       []apiReason
	// Tester is off without --console-verifier-url.
	Tester  bool
	Routes  []*apiRoute
	Roles   []string
	Methods []string
	Form    testerForm
	Result  *testerResult
}

// groupView is a tag's routes with their examples.
type groupView struct {
	Tag    string
	Routes []routeView
}

// routeView is a route with its examples, and their heights in lines.
type routeView struct {
	*apiRoute
	Curl, Go         string
	CurlRows, GoRows int
}

// testerForm is what the tester's form sends, but the key, which is never written back.
type testerForm struct {
	Route, Org, MinRole, Scope, Metric, Method string
}

// testerResult is the verifier's answer.
type testerResult struct {
	// Request is what was sent, without the key.
	Request    string
	Status     string
	Allowed    bool
	Reason     string
	Meaning    string
	Headers    []headerValue
	Body       string
	RouteLabel string
}

// headerValue is a header of the answer.
type headerValue struct {
	Name, Value string
}

// developers serves the Developers page (GET) and the tester (POST, its CSRF token checked by
// signedIn).
func (s *Server) developers(w http.ResponseWriter, r *http.Request, sess *session) {
	doc, err := verifierAPI()
	if err != nil {
		s.opts.Log.Error(err, "reading the verifier's OpenAPI document")
		p := newPage(r, sess, "Developers", "developers")
		p.Error = "The verifier's OpenAPI document compiled into this console cannot be read: " + err.Error()
		s.render(w, http.StatusInternalServerError, "message", p)
		return
	}
	p := newPage(r, sess, "Developers", "developers")
	data := s.developersData(doc, testerForm{Route: testerRoutes[0], Org: sess.currentOrg(), Method: http.MethodGet})
	p.Data = data
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.render(w, http.StatusOK, "developers", p)
	case http.MethodPost:
		var status int
		data.Form, data.Result, status, p.Error = s.test(r, doc)
		s.render(w, status, "developers", p)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		p.Error = "The Developers page takes GET, and POST from its tester form."
		s.render(w, http.StatusMethodNotAllowed, "message", p)
	}
}

// developersData fills the page: the document's routes with their examples against the
// verifier the console knows (or the document's own server), and the tester's choices.
func (s *Server) developersData(doc *apiDoc, form testerForm) *developersData {
	base := s.opts.VerifierURL
	if base == "" {
		base = doc.Server
	}
	data := &developersData{Title: doc.Title, Version: doc.Version, Description: doc.Description, Base: base,
		Reasons: doc.Reasons, Tester: s.opts.VerifierURL != "", Methods: testerMethods, Form: form}
	if s.opts.VerifierURL != "" {
		data.OpenAPI = s.opts.VerifierURL + "/openapi.json"
	}
	for _, g := range doc.Groups {
		view := groupView{Tag: g.Tag}
		for _, r := range g.Routes {
			ex := exampleOf(r)
			v := routeView{apiRoute: r, Curl: curlExample(base, ex), Go: goExample(base, ex)}
			v.CurlRows, v.GoRows = strings.Count(v.Curl, "\n")+1, strings.Count(v.Go, "\n")
			view.Routes = append(view.Routes, v)
		}
		data.Groups = append(data.Groups, view)
	}
	for _, id := range testerRoutes {
		if r := doc.byID[id]; r != nil {
			data.Routes = append(data.Routes, r)
		}
	}
	data.Roles = doc.roles()
	return data
}

// roles are the values minRole takes, as the document lists them.
func (d *apiDoc) roles() []string {
	for _, id := range testerRoutes {
		if r := d.byID[id]; r != nil {
			for _, p := range r.Params {
				if p.Name == "minRole" {
					return p.Enum
				}
			}
			if r.Body != nil {
				for _, f := range r.Body.Fields {
					if f.Name == "minRole" {
						return f.Enum
					}
				}
			}
		}
	}
	return nil
}

// test sends the tester's request to the verifier and reads its answer. The key is read from
// the form and goes into that one request only: the form returned and the result hold none of
// it (a verifier that echoed it would see it blanked).
func (s *Server) test(r *http.Request, doc *apiDoc) (testerForm, *testerResult, int, string) {
	form := testerForm{Route: r.PostForm.Get("route"), Org: strings.TrimSpace(r.PostForm.Get("org")),
		MinRole: r.PostForm.Get("minRole"), Scope: strings.TrimSpace(r.PostForm.Get("scope")),
		Metric: strings.TrimSpace(r.PostForm.Get("metric")), Method: r.PostForm.Get("method")}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if s.opts.VerifierURL == "" {
		return form, nil, http.StatusServiceUnavailable, "The tester needs the verifier's address: start the console with --console-verifier-url (the chart's console.verifierURL)."
	}
	route := doc.byID[form.Route]
	if route == nil || !slices.Contains(testerRoutes, form.Route) {
		return form, nil, http.StatusBadRequest, "Pick one of the routes the tester offers."
	}
	if problem := form.check(key, doc.roles()); problem != "" {
		return form, nil, http.StatusBadRequest, problem
	}
	req, shown, err := s.testRequest(r.Context(), route, form, key)
	if err != nil {
		return form, nil, http.StatusInternalServerError, "The request could not be made: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(r.Context(), testerTimeout)
	defer cancel()
	resp, err := s.verifier.Do(req.WithContext(ctx))
	if err != nil {
		return form, nil, http.StatusBadGateway, "The verifier at " + s.opts.VerifierURL + " did not answer (" + scrub(err.Error(), key) + "): check that it runs and that --console-verifier-url reaches it, then try again."
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	res := &testerResult{Request: shown, Status: scrub(resp.Status, key), RouteLabel: route.Method + " " + route.Path}
	var answer struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(body, &answer) // a body that is not the verifier's JSON shows as it is
	res.Allowed = resp.StatusCode == http.StatusOK && answer.Valid
	res.Reason = resp.Header.Get("X-Clearance-Reason")
	if res.Reason == "" {
		res.Reason = answer.Reason
	}
	res.Reason = scrub(res.Reason, key)
	for _, reason := range doc.Reasons {
		if reason.Reason == res.Reason {
			res.Meaning = reason.Meaning
		}
	}
	for _, name := range route.answerHeaders() {
		for _, v := range resp.Header.Values(name) {
			res.Headers = append(res.Headers, headerValue{Name: name, Value: scrub(v, key)})
		}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		body = pretty.Bytes()
	}
	res.Body = scrub(string(body), key)
	return form, res, http.StatusOK, ""
}

// check says what is wrong with the tester's form, in a sentence, or nothing.
func (f *testerForm) check(key string, roles []string) string {
	switch {
	case key == "":
		return "Paste the key (or an access token) to test into the Key field."
	case len(key) > maxTesterKey || strings.ContainsFunc(key, unicode.IsControl) || strings.ContainsRune(key, ' '):
		return "The key field holds something that is not a key: paste the key alone, on one line, without spaces."
	case len(validation.IsDNS1123Label(f.Org)) > 0:
		return "Type the org (a namespace name, such as globex) the request acts in."
	case f.MinRole != "" && !slices.Contains(roles, f.MinRole):
		return "Pick the least role from the list, or leave it to the method."
	case !slices.Contains(testerMethods, f.Method):
		return "Pick the client's method from the list."
	case !plain(f.Scope) || !plain(f.Metric):
		return "A scope or metric is one word of at most 253 characters, without spaces, such as reports:read or occupancy.current."
	}
	return ""
}

// plain is an optional scope or metric name: at most 253 printable characters, no spaces.
func plain(s string) bool {
	return len(s) <= 253 && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) })
}

// testRequest makes the tester's request: forward-auth with the key as a bearer credential (a
// key or an access token) and the client's method in X-Original-Method, or the JSON check with
// the key in the body. shown is the request as the page writes it, the key left out.
func (s *Server) testRequest(ctx context.Context, route *apiRoute, f testerForm, key string) (*http.Request, string, error) {
	fields := []struct{ name, value string }{{"org", f.Org}, {"minRole", f.MinRole}, {"scope", f.Scope}, {"metric", f.Metric}}
	if route.Body != nil { // the JSON check: POST with a body
		payload := map[string]string{"key": key, "method": f.Method}
		shown := map[string]string{"key": "(your key)", "method": f.Method}
		for _, kv := range fields {
			if kv.value != "" {
				payload[kv.name], shown[kv.name] = kv.value, kv.value
			}
		}
		body, err := json.Marshal(payload)
		if err != nil {
			return nil, "", err
		}
		req, err := http.NewRequestWithContext(ctx, route.Method, s.opts.VerifierURL+route.Path, bytes.NewReader(body))
		if err != nil {
			return nil, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		text, _ := json.Marshal(shown)
		return req, route.Method + " " + route.Path + "\nContent-Type: application/json\n\n" + string(text), nil
	}
	q := url.Values{}
	for _, kv := range fields {
		if kv.value != "" {
			q.Set(kv.name, kv.value)
		}
	}
	target := route.Path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, route.Method, s.opts.VerifierURL+target, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Original-Method", f.Method)
	return req, route.Method + " " + target + "\nAuthorization: Bearer (your key)\nX-Original-Method: " + f.Method, nil
}

// answerHeaders are the headers the route's answers may carry, as the document lists them.
func (r *apiRoute) answerHeaders() []string {
	var out []string
	for _, resp := range r.Responses {
		for _, h := range resp.Headers {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// scrub blanks the key wherever it shows up in what the page writes.
func scrub(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "(your key)")
}
