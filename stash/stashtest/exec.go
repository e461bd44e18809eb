package stashtest

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// object is a GraphQL object whose fields are computed on demand, so cyclic
// graphs (scene → marker → scene) cost only what is selected.
type object interface {
	get(e *executor, name string, args map[string]any) any
}

// group is the fields sharing one response key, merged as GraphQL requires.
type group struct {
	key    string
	fields []*ast.Field
}

// executor runs one validated operation against the server's state (with
// s.mu held) and writes the JSON response as it goes.
type executor struct {
	s      *Server
	vars   map[string]any
	base   string
	out    []byte
	errs   gqlerror.List
	subs   map[*ast.Field][]group
	argMap map[*ast.Field]map[string]any
}

// execute returns the complete response body. Called with s.mu held.
func (s *Server) execute(op *ast.OperationDefinition, vars map[string]any, base string) []byte {
	e := &executor{
		s: s, vars: vars, base: base,
		subs:   map[*ast.Field][]group{},
		argMap: map[*ast.Field]map[string]any{},
	}
	rootType := "Query"
	if op.Operation == ast.Mutation {
		rootType = "Mutation"
	}
	groups := e.collect(nil, op.SelectionSet, rootType)

	data := make([]byte, 0, 4096)
	data = append(data, '{')
	nullData := false
	for i, g := range groups {
		f := g.fields[0]
		if i > 0 {
			data = append(data, ',')
		}
		data = appendString(data, g.key)
		data = append(data, ':')
		if f.Name == "__typename" {
			data = appendString(data, rootType)
			continue
		}
		v, err := e.resolveRoot(f, e.args(f))
		if err != nil {
			e.errs = append(e.errs, &gqlerror.Error{Message: err.Error(), Path: ast.Path{ast.PathName(g.key)}})
			if f.Definition.Type.NonNull {
				// A non-null root field failing nulls the whole data.
				nullData = true
			}
			data = append(data, "null"...)
			continue
		}
		e.out = data
		e.write(v, f.Definition.Type, g)
		data = e.out
	}
	data = append(data, '}')

	out := make([]byte, 0, len(data)+64)
	out = append(out, '{')
	if len(e.errs) > 0 {
		b, _ := json.Marshal(e.errs)
		out = append(out, `"errors":`...)
		out = append(out, b...)
		out = append(out, ',')
	}
	out = append(out, `"data":`...)
	if nullData {
		out = append(out, "null"...)
	} else {
		out = append(out, data...)
	}
	return append(out, '}')
}

// executeEvent renders one subscription event as the payload gqlgen sends:
// value is what the single root field resolved to for this event, projected
// through the subscriber's own selection. Called with s.mu held.
func (s *Server) executeEvent(op *ast.OperationDefinition, vars map[string]any, value any) []byte {
	e := &executor{
		s: s, vars: vars,
		subs:   map[*ast.Field][]group{},
		argMap: map[*ast.Field]map[string]any{},
	}
	e.out = append(make([]byte, 0, 512), `{"data":{`...)
	for i, g := range e.collect(nil, op.SelectionSet, "Subscription") {
		if i > 0 {
			e.out = append(e.out, ',')
		}
		e.out = appendString(e.out, g.key)
		e.out = append(e.out, ':')
		f := g.fields[0]
		if f.Name == "__typename" {
			e.out = appendString(e.out, "Subscription")
			continue
		}
		e.write(value, f.Definition.Type, g)
	}
	return append(e.out, "}}"...)
}

func (e *executor) args(f *ast.Field) map[string]any {
	if a, ok := e.argMap[f]; ok {
		return a
	}
	a := f.ArgumentMap(e.vars)
	e.argMap[f] = a
	return a
}

// skipped applies @skip and @include.
func (e *executor) skipped(dirs ast.DirectiveList) bool {
	if d := dirs.ForName("skip"); d != nil {
		if b, _ := d.ArgumentMap(e.vars)["if"].(bool); b {
			return true
		}
	}
	if d := dirs.ForName("include"); d != nil {
		if b, _ := d.ArgumentMap(e.vars)["if"].(bool); !b {
			return true
		}
	}
	return false
}

// collect flattens fragments into response-key groups, in order.
func (e *executor) collect(groups []group, set ast.SelectionSet, typeName string) []group {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if e.skipped(sel.Directives) {
				continue
			}
			key := sel.Alias
			if key == "" {
				key = sel.Name
			}
			found := false
			for i := range groups {
				if groups[i].key == key {
					groups[i].fields = append(groups[i].fields, sel)
					found = true
					break
				}
			}
			if !found {
				groups = append(groups, group{key: key, fields: []*ast.Field{sel}})
			}
		case *ast.InlineFragment:
			if e.skipped(sel.Directives) || (sel.TypeCondition != "" && sel.TypeCondition != typeName) {
				continue
			}
			groups = e.collect(groups, sel.SelectionSet, typeName)
		case *ast.FragmentSpread:
			d := sel.Definition
			if e.skipped(sel.Directives) || d == nil || (d.TypeCondition != "" && d.TypeCondition != typeName) {
				continue
			}
			groups = e.collect(groups, d.SelectionSet, typeName)
		}
	}
	return groups
}

// subgroups is the merged selection below a group, cached per field since a
// list repeats it for every item.
func (e *executor) subgroups(g group, typeName string) []group {
	if len(g.fields) == 1 {
		if sub, ok := e.subs[g.fields[0]]; ok {
			return sub
		}
	}
	var sub []group
	for _, f := range g.fields {
		sub = e.collect(sub, f.SelectionSet, typeName)
	}
	if len(g.fields) == 1 {
		e.subs[g.fields[0]] = sub
	}
	return sub
}

// write projects a resolved value through the selection of g.
func (e *executor) write(v any, t *ast.Type, g group) {
	if v == nil {
		e.out = append(e.out, "null"...)
		return
	}
	if t.Elem != nil {
		list, _ := v.([]any)
		e.out = append(e.out, '[')
		for i, item := range list {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			e.write(item, t.Elem, g)
		}
		e.out = append(e.out, ']')
		return
	}
	def := Schema.Types[t.NamedType]
	if def.Kind != ast.Object {
		e.out = e.s.appendScalar(e.out, v)
		return
	}
	e.out = append(e.out, '{')
	for i, sg := range e.subgroups(g, def.Name) {
		if i > 0 {
			e.out = append(e.out, ',')
		}
		e.out = appendString(e.out, sg.key)
		e.out = append(e.out, ':')
		f := sg.fields[0]
		if f.Name == "__typename" {
			e.out = appendString(e.out, def.Name)
			continue
		}
		var fv any
		switch o := v.(type) {
		case map[string]any:
			fv = o[f.Name]
		case object:
			fv = o.get(e, f.Name, e.args(f))
		}
		e.write(fv, f.Definition.Type, sg)
	}
	e.out = append(e.out, '}')
}

func (s *Server) appendScalar(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return append(b, "null"...)
		}
		// gqlgen writes floats with %g, so a big filesize comes out as
		// 1.00000001e+08; clients must decode it as a float.
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case time.Time:
		// gqlgen's Time scalar: nanoseconds when there are any, so log
		// entries keep theirs while second-precision values look as before.
		return appendString(b, x.In(s.loc).Format(time.RFC3339Nano))
	}
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

// appendString writes a JSON string, with a fast path for plain ASCII.
func appendString(b []byte, str string) []byte {
	for i := 0; i < len(str); i++ {
		c := str[i]
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			j, _ := json.Marshal(str)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, str...)
	return append(b, '"')
}
