package stashtest

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestGraphQL_RejectsInvalidWith422(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	tests := []struct {
		name  string
		query string
		vars  map[string]any
	}{
		{"unknown field", `{ findScene(id: "1") { id nope } }`, nil},
		{"unknown root field", `{ allScenes { id } }`, nil},
		{"unknown argument", `{ findScenes(scene_marker_filter: {}) { count } }`, nil},
		{"bad literal type", `{ findScenes(filter: {per_page: "ten"}) { count } }`, nil},
		{"missing required argument", `{ findJob { id } }`, nil},
		{"scalar without selection", `{ findScene(id: "1") }`, nil},
		{"parse error", `{ findScene(id: "1") { id `, nil},
		{"empty query", ``, nil},
		{"marker filter has no id", `{ findSceneMarkers(scene_marker_filter: {id: {value: 1, modifier: EQUALS}}) { count } }`, nil},
		{"bad variable type", `query($f: FindFilterType) { findScenes(filter: $f) { count } }`, map[string]any{"f": map[string]any{"per_page": "x"}}},
		{"unknown variable field", `query($f: FindFilterType) { findScenes(filter: $f) { count } }`, map[string]any{"f": map[string]any{"perPage": 1}}},
		{"missing required variable", `query($id: ID!) { findJob(input: {id: $id}) { id } }`, nil},
		{"enum in wrong case", `query($f: FindFilterType) { findScenes(filter: $f) { count } }`, map[string]any{"f": map[string]any{"direction": "desc"}}},
		{"mutation field in query", `{ stopAllJobs }`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.query, tt.vars)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422; body %s", r.Status, r.Raw)
			}
			if len(r.Errors) == 0 || str(r.Errors[0]["message"]) == "" {
				t.Fatalf("no error message: %s", r.Raw)
			}
			if !bytes.Contains(r.Raw, []byte(`"data":null`)) {
				t.Fatalf("data not null: %s", r.Raw)
			}
		})
	}
	if n := len(s.Mutations()); n != 0 {
		t.Errorf("mutations recorded as run: %d", n)
	}
}

func TestGraphQL_TransportErrorsAre400JSON(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	tests := []struct {
		name, ctype, body, method string
	}{
		{"text/plain", "text/plain", `{"query":"{ version { hash } }"}`, http.MethodPost},
		{"no content type", "", `{"query":"{ version { hash } }"}`, http.MethodPost},
		{"bad json", "application/json", `{"query":`, http.MethodPost},
		{"GET", "", "", http.MethodGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL()+"/graphql", strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			r := c.send(req)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Raw)
			}
			if len(r.Errors) == 0 {
				t.Fatalf("want JSON errors body, got %s", r.Raw)
			}
		})
	}
	// charset parameters are fine
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/graphql", strings.NewReader(`{"query":"{ version { hash } }"}`))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if r := c.send(req); r.Status != http.StatusOK {
		t.Fatalf("with charset: status %d %s", r.Status, r.Raw)
	}
}

func TestGraphQL_ResolverErrorNullsOnlyNullableField(t *testing.T) {
	t.Parallel()
	s := New(t)
	id := s.AddScene()
	c := newClient(t, s)
	r := c.do(fmt.Sprintf(`{ a: findScene(id: %q) { id } b: findScene(id: "abc") { id } }`, id), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	if len(r.Errors) != 1 || !strings.Contains(str(r.Errors[0]["message"]), "invalid syntax") {
		t.Fatalf("errors %v", r.Errors)
	}
	if dig(r.Errors[0], "path", 0) != "b" {
		t.Errorf("error path %v", r.Errors[0]["path"])
	}
	if dig(r.Data, "a", "id") != id || r.Data["b"] != nil {
		t.Fatalf("data %v", r.Data)
	}
	if _, ok := r.Data["b"]; !ok {
		t.Fatalf("b missing from data: %s", r.Raw)
	}
}

func TestGraphQL_AliasesFragmentsTypename(t *testing.T) {
	t.Parallel()
	s := New(t)
	id := s.AddScene(SceneTitle("Hello \"world\" ✓"))
	c := newClient(t, s)
	var q strings.Builder
	q.WriteString("query Many {")
	for i := range 250 {
		fmt.Fprintf(&q, " s%d: findScene(id: %q) { id }", i, id)
	}
	q.WriteString(" missing: findScene(id: \"999\") { id } }")
	d := c.ok(q.String(), nil)
	if len(d) != 251 {
		t.Fatalf("got %d fields", len(d))
	}
	for i := range 250 {
		if dig(d, fmt.Sprintf("s%d", i), "id") != id {
			t.Fatalf("s%d = %v", i, d[fmt.Sprintf("s%d", i)])
		}
	}
	if d["missing"] != nil {
		t.Fatalf("unknown scene not null: %v", d["missing"])
	}
	if n := s.CountField("findScene"); n != 251 {
		t.Errorf("CountField = %d, want 251", n)
	}

	d = c.ok(`fragment F on Scene { id t: title }
		query($skip: Boolean!) { __typename findScene(id: "`+id+`") { __typename ...F ... on Scene { files { __typename } } title @skip(if: $skip) id } }`,
		map[string]any{"skip": true})
	sc := d["findScene"].(map[string]any)
	if d["__typename"] != "Query" || sc["__typename"] != "Scene" || sc["t"] != "Hello \"world\" ✓" || dig(sc, "files", 0, "__typename") != "VideoFile" {
		t.Fatalf("got %v", d)
	}
	if _, ok := sc["title"]; ok {
		t.Errorf("@skip ignored: %v", sc)
	}
}

func TestGraphQL_VersionAndConfiguration(t *testing.T) {
	t.Parallel()
	s := New(t, WithVersion("v0.26.0", "abc", "2024-01-01"))
	c := newClient(t, s)
	d := c.ok(`{ version { version hash build_time } configuration { defaults { generate { covers previews previewOptions { previewSegments } } deleteFile } } }`, nil)
	if dig(d, "version", "version") != "v0.26.0" || dig(d, "version", "hash") != "abc" {
		t.Errorf("version %v", d["version"])
	}
	gen, present := dig(d, "configuration", "defaults").(map[string]any)["generate"]
	if !present || gen != nil {
		t.Errorf("generate defaults should be null by default, got %v", gen)
	}
	s.SetGenerateDefaults(map[string]any{"covers": true, "previews": false, "previewOptions": map[string]any{"previewSegments": 12}})
	d = c.ok(`{ configuration { defaults { generate { covers previews sprites previewOptions { previewSegments } } } } }`, nil)
	g := dig(d, "configuration", "defaults", "generate").(map[string]any)
	if g["covers"] != true || g["previews"] != false || g["sprites"] != nil || dig(g, "previewOptions", "previewSegments") != float64(12) {
		t.Errorf("generate %v", g)
	}
}

func TestAuth_GraphQL(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("secret"))
	tests := []struct {
		name       string
		key        string
		wantStatus int
	}{
		{"right key", "secret", http.StatusOK},
		{"no key", "", http.StatusUnauthorized},
		{"wrong key", "nope", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &client{t: t, s: s, key: tt.key}
			r := c.do(`mutation { stopAllJobs }`, nil)
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Raw)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if r.Data != nil || r.Errors != nil || bytes.HasPrefix(bytes.TrimSpace(r.Raw), []byte("{")) {
					t.Fatalf("401 body must not be GraphQL JSON: %q", r.Raw)
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("content type %q", ct)
				}
			}
		})
	}
	calls := s.Mutations()
	if len(calls) != 3 {
		t.Fatalf("want 3 mutation attempts logged, got %d", len(calls))
	}
	var valid int
	for _, c := range calls {
		if c.KeyValid {
			valid++
		}
	}
	if valid != 1 || len(s.StopCalls()) != 1 {
		t.Errorf("valid %d, stop calls %d; want 1, 1", valid, len(s.StopCalls()))
	}
}

func TestAuth_ForbiddenMode(t *testing.T) {
	t.Parallel()
	s := New(t, WithForbidden())
	c := newClient(t, s)
	if r := c.do(`{ version { hash } }`, nil); r.Status != http.StatusForbidden {
		t.Fatalf("status %d", r.Status)
	}
	resp, _ := c.get(http.MethodGet, s.URL()+"/scene/1/preview", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("file status %d", resp.StatusCode)
	}
	s.SetForbidden(false)
	if r := c.do(`{ version { hash } }`, nil); r.Status != http.StatusOK {
		t.Fatalf("after SetForbidden(false): %d", r.Status)
	}

	k := New(t, WithAPIKey("k"), WithForbidden())
	kc := newClient(t, k)
	if r := kc.do(`{ version { hash } }`, nil); r.Status != http.StatusOK {
		t.Fatalf("with key: %d", r.Status)
	}
	kc.key = ""
	if r := kc.do(`{ version { hash } }`, nil); r.Status != http.StatusForbidden {
		t.Fatalf("without key: %d", r.Status)
	}
}

func TestDateHeader_FromFakeClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2021, 6, 1, 8, 30, 15, 0, time.UTC)
	s := New(t, WithClock(start), WithAPIKey("k"))
	id := s.AddScene()
	c := newClient(t, s)
	check := func(h http.Header, want time.Time) {
		t.Helper()
		got, err := http.ParseTime(h.Get("Date"))
		if err != nil || !got.Equal(want) {
			t.Fatalf("Date %q, want %v", h.Get("Date"), want)
		}
	}
	check(c.do(`{ version { hash } }`, nil).Header, start)
	s.Advance(90 * time.Minute)
	later := start.Add(90 * time.Minute)
	check(c.do(`{ version { hash } }`, nil).Header, later)
	resp, _ := c.get(http.MethodGet, s.URL()+"/scene/"+id+"/screenshot", nil)
	check(resp.Header, later)
	c.key = ""
	check(c.do(`{ version { hash } }`, nil).Header, later)
	resp, _ = c.get(http.MethodGet, s.URL()+"/scene/"+id+"/preview", nil)
	check(resp.Header, later)
}

func TestTimestamps_NonUTCOffsetSecondPrecision(t *testing.T) {
	t.Parallel()
	s := New(t, WithClock(time.Date(2024, 1, 2, 3, 4, 5, 999, time.UTC)))
	id := s.AddScene()
	c := newClient(t, s)
	d := c.ok(`{ findScene(id: "`+id+`") { created_at updated_at } }`, nil)
	got := str(dig(d, "findScene", "created_at"))
	if got != "2024-01-02T05:04:05+02:00" {
		t.Fatalf("created_at = %q", got)
	}
	s.Advance(time.Hour)
	s.TouchScene(id)
	s.AddMarker(id) // adding a marker must not touch the scene
	d = c.ok(`{ findScene(id: "`+id+`") { created_at updated_at } }`, nil)
	if str(dig(d, "findScene", "updated_at")) != "2024-01-02T06:04:05+02:00" {
		t.Fatalf("updated_at = %v", dig(d, "findScene", "updated_at"))
	}
	s.Advance(time.Hour)
	s.AddMarker(id)
	if u := s.SceneUpdatedAt(id); !u.Equal(time.Date(2024, 1, 2, 4, 4, 5, 0, time.UTC)) {
		t.Fatalf("AddMarker changed updated_at to %v", u)
	}
}

func TestCallLog(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	c := newClient(t, s)
	c.ok(`query Q($id: ID!) { findScene(id: $id) { id } version { hash } }`, map[string]any{"id": "7"})
	id := c.generate(map[string]any{"covers": true, "sceneIDs": []any{"7"}, "overwrite": false})
	c.ok(`mutation { stopJob(job_id: "`+id+`") }`, nil)
	c.get(http.MethodGet, s.URL()+"/scene/7/preview", map[string]string{"Range": "bytes=0-0"})

	calls := s.Calls()
	if len(calls) != 3 {
		t.Fatalf("calls %d", len(calls))
	}
	q := calls[0]
	if q.Operation != "query" || q.OperationName != "" || strings.Join(q.Fields, ",") != "findScene,version" ||
		q.Variables["id"] != "7" || !q.KeyPresent || !q.KeyValid || q.Status != 200 || !strings.Contains(q.Query, "findScene") {
		t.Errorf("query call %+v", q)
	}
	if m := s.Mutations(); len(m) != 2 || m[0].Fields[0] != "metadataGenerate" || m[1].Fields[0] != "stopJob" {
		t.Errorf("mutations %+v", m)
	}
	in := s.GenerateInputs()
	if len(in) != 1 || fmt.Sprint(in[0]) != fmt.Sprint(map[string]any{"covers": true, "sceneIDs": []any{"7"}, "overwrite": false}) {
		t.Errorf("generate inputs %v", in)
	}
	if st := s.StopCalls(); len(st) != 1 || st[0].JobID != id {
		t.Errorf("stop calls %v", st)
	}
	f := s.FileRequests()
	if len(f) != 1 || f[0].Method != "GET" || f[0].Path != "/scene/7/preview" || f[0].Range != "bytes=0-0" || !f[0].KeyPresent || f[0].Status != 404 {
		t.Errorf("file requests %+v", f)
	}
	s.ResetLog()
	if len(s.Calls())+len(s.FileRequests()) != 0 {
		t.Error("ResetLog kept entries")
	}
}

func TestGenerateInput_InlineRecordedAsJSON(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	c.ok(`mutation { metadataGenerate(input: {previews: true, imagePreviews: null, sceneIDs: [1, "2"], previewOptions: {previewSegments: 3, previewPreset: slow}}) }`, nil)
	got := fmt.Sprint(s.GenerateInputs()[0])
	want := fmt.Sprint(map[string]any{"previews": true, "imagePreviews": nil, "sceneIDs": []any{float64(1), "2"},
		"previewOptions": map[string]any{"previewSegments": float64(3), "previewPreset": "slow"}})
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func TestSchema_IsExported(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Query", "Mutation", "Job", "Scene", "SceneMarker", "GenerateMetadataInput", "SceneFilterType"} {
		if Schema.Types[name] == nil {
			t.Errorf("schema lacks %s", name)
		}
	}
	if Schema.Types["SceneMarkerFilterType"].Fields.ForName("id") != nil {
		t.Error("marker filter must have no id criterion")
	}
}
