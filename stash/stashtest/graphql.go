package stashtest

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

//go:embed schema.graphql
var schemaSDL string

// Schema is the subset of Stash's schema the fake accepts, exported so other
// tests can validate query constants without a server.
var Schema = gqlparser.MustLoadSchema(&ast.Source{Name: "schema.graphql", Input: schemaSDL})

// docEntry is a parsed and validated query. Clients send the same constant
// queries over and over, so each is parsed once.
type docEntry struct {
	doc  *ast.QueryDocument
	errs gqlerror.List
}

type docCache struct {
	mu sync.Mutex
	m  map[string]*docEntry
}

const docCacheSize = 512

func (c *docCache) get(query string) *docEntry {
	c.mu.Lock()
	e := c.m[query]
	c.mu.Unlock()
	if e != nil {
		return e
	}
	e = &docEntry{}
	doc, err := parser.ParseQuery(&ast.Source{Name: "query", Input: query})
	if err != nil {
		e.errs = withCode(asList(err), "GRAPHQL_PARSE_FAILED")
	} else {
		e.doc = doc
		e.errs = withCode(validator.ValidateWithRules(Schema, doc, nil), "GRAPHQL_VALIDATION_FAILED")
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= docCacheSize {
		c.m = map[string]*docEntry{}
	}
	c.m[query] = e
	c.mu.Unlock()
	return e
}

func asList(err error) gqlerror.List {
	var list gqlerror.List
	if errors.As(err, &list) {
		return list
	}
	var one *gqlerror.Error
	if errors.As(err, &one) {
		return gqlerror.List{one}
	}
	return gqlerror.List{gqlerror.Wrap(err)}
}

// withCode tags errors the way gqlgen (Stash's server) does.
func withCode(list gqlerror.List, code string) gqlerror.List {
	for _, e := range list {
		if e.Extensions == nil {
			e.Extensions = map[string]any{}
		}
		e.Extensions["code"] = code
	}
	return list
}

// pickOperation chooses the operation as gqlgen does: by name, or the only
// one.
func pickOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, error) {
	if name != "" {
		if op := doc.Operations.ForName(name); op != nil {
			return op, nil
		}
		return nil, fmt.Errorf("operation %s not found", name)
	}
	if len(doc.Operations) == 1 {
		return doc.Operations[0], nil
	}
	return nil, errors.New("operation name is required")
}

func topFieldNames(op *ast.OperationDefinition) []string {
	var out []string
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				out = append(out, sel.Name)
			case *ast.InlineFragment:
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				if sel.Definition != nil {
					walk(sel.Definition.SelectionSet)
				}
			}
		}
	}
	walk(op.SelectionSet)
	return out
}

type gqlRequest struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

// serveGraphQL is POST /graphql with gqlgen's status codes: 400 for a body
// it cannot take, 422 for a query that fails parsing or validation, 200
// otherwise, resolver errors included.
func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	present, valid := s.checkKey(r)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))

	// Decode and parse first, whatever the outcome, so the log says what
	// was attempted even when the request is refused.
	var req gqlRequest
	decodeErr := json.Unmarshal(body, &req)
	call := &Call{Query: req.Query, OperationName: req.OperationName, KeyPresent: present, KeyValid: valid}
	var logVars, vars map[string]any
	if decodeErr == nil && len(req.Variables) > 0 && string(req.Variables) != "null" {
		if err := json.Unmarshal(req.Variables, &logVars); err != nil {
			decodeErr = err
		}
		_ = json.Unmarshal(req.Variables, &vars)
	}
	call.Variables = logVars
	var entry *docEntry
	var op *ast.OperationDefinition
	var opErr error
	if decodeErr == nil {
		entry = s.docs.get(req.Query)
		if entry.doc != nil {
			op, opErr = pickOperation(entry.doc, req.OperationName)
			if op != nil {
				call.Operation = string(op.Operation)
				call.Fields = topFieldNames(op)
			}
		}
	}
	// errPath is the field a FaultGraphQLError blames: the fault's own
	// field filter, else the first field asked for.
	errPath := func(f *Fault) string {
		if f.Field != "" {
			return f.Field
		}
		if len(call.Fields) > 0 {
			return call.Fields[0]
		}
		return ""
	}

	s.mu.Lock()
	call.Time, call.Seq = s.now, s.nextSeq()
	s.log.calls = append(s.log.calls, call)
	f := s.takeFault(true, call.Fields, "", false)
	if f != nil {
		call.Fault = f.Kind
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		call.Status = sw.status
		s.mu.Unlock()
	}()

	if f != nil && s.applyFault(sw, r, f, errPath(f)) {
		return
	}
	if !valid {
		s.denyUnauthorized(sw)
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || mt != "application/json" {
		writeErrors(sw, http.StatusBadRequest, gqlerror.List{gqlerror.Errorf("transport not supported")})
		return
	}
	if decodeErr != nil {
		writeErrors(sw, http.StatusBadRequest, gqlerror.List{gqlerror.Errorf("json request body could not be decoded: %v body:%s", decodeErr, body)})
		return
	}
	if len(entry.errs) > 0 {
		writeErrors(sw, http.StatusUnprocessableEntity, entry.errs)
		return
	}
	if opErr != nil {
		writeErrors(sw, http.StatusUnprocessableEntity, gqlerror.List{gqlerror.Wrap(opErr)})
		return
	}
	coerced, err := validator.VariableValues(Schema, op, vars)
	if err == nil {
		err = checkEnumCase(op, coerced)
	}
	if err != nil {
		writeErrors(sw, http.StatusUnprocessableEntity, withCode(asList(err), "GRAPHQL_VALIDATION_FAILED"))
		return
	}

	s.mu.Lock()
	out := s.execute(op, coerced, "http://"+r.Host)
	f = s.takeFault(true, call.Fields, "", true)
	if f != nil {
		call.Fault = f.Kind
	}
	s.mu.Unlock()
	if f != nil && s.applyFault(sw, r, f, errPath(f)) {
		return
	}
	sw.Header().Set("Content-Type", "application/json")
	sw.WriteHeader(http.StatusOK)
	_, _ = sw.Write(out)
}

func writeErrors(w http.ResponseWriter, status int, errs gqlerror.List) {
	b, err := json.Marshal(map[string]any{"errors": errs, "data": nil})
	if err != nil {
		b = []byte(`{"errors":[{"message":"stashtest: cannot encode errors"}],"data":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// checkEnumCase rejects enum variable values in the wrong case: gqlparser
// accepts "desc" for DESC, Stash's gqlgen does not.
func checkEnumCase(op *ast.OperationDefinition, vars map[string]any) error {
	for _, def := range op.VariableDefinitions {
		if err := enumCase(def.Type, vars[def.Variable], "variable."+def.Variable); err != nil {
			return err
		}
	}
	return nil
}

func enumCase(t *ast.Type, v any, path string) error {
	if v == nil {
		return nil
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return enumCase(t.Elem, v, path)
		}
		for i, item := range list {
			if err := enumCase(t.Elem, item, fmt.Sprintf("%s.%d", path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	def := Schema.Types[t.NamedType]
	switch def.Kind {
	case ast.Enum:
		str, _ := v.(string)
		if def.EnumValues.ForName(str) == nil {
			return gqlerror.Errorf("input: %s %s is not a valid %s", path, str, def.Name)
		}
	case ast.InputObject:
		m, _ := v.(map[string]any)
		for _, fd := range def.Fields {
			if err := enumCase(fd.Type, m[fd.Name], path+"."+fd.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
