package stash

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNew_RejectsUnusableURLs(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"",
		"localhost:9999",
		"ftp://user:hunter2@stash.lan/?apikey=" + testKey,
		"http://",
		"http://user:hunter2@/?apikey=" + testKey,
		"/graphql",
		"http://[::1",
	} {
		_, err := New(Options{URL: raw, APIKey: testKey})
		if err == nil {
			t.Errorf("New(%q) accepted it", raw)
			continue
		}
		noSecret(t, "New error", err.Error(), "hunter2")
		if !strings.Contains(err.Error(), "http://localhost:9999") {
			t.Errorf("New(%q) error does not show an example: %v", raw, err)
		}
	}
}

func TestClient_URLIsRedacted(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"http://admin:hunter2@stash.lan:9999/":                     "http://stash.lan:9999",
		"https://admin:hunter2@stash.lan/stash/?apikey=" + testKey: "https://stash.lan/stash/",
	} {
		c := newTestClient(t, raw)
		if got := c.URL(); got != want {
			t.Errorf("URL() = %q, want %q", got, want)
		}
	}
}

// TestClient_Requests checks the query, variables and headers of every
// GraphQL method against what Stash expects.
func TestClient_Requests(t *testing.T) {
	t.Parallel()
	tru := true
	cases := []struct {
		name   string
		answer string // data
		call   func(c *Client) error
		query  string
		vars   string // JSON; "" = no variables
	}{
		{"JobQueue", `{"jobQueue":null}`,
			func(c *Client) error { _, err := c.JobQueue(context.Background()); return err },
			qJobQueue, ""},
		{"FindJob", `{"findJob":{"id":"7","status":"RUNNING","description":"Generating...","addTime":"2024-03-10T12:00:00+02:00"}}`,
			func(c *Client) error { _, err := c.FindJob(context.Background(), "7"); return err },
			qFindJob, `{"id":"7"}`},
		{"StopJob", `{"stopJob":true}`,
			func(c *Client) error { return c.StopJob(context.Background(), "7") },
			mStopJob, `{"id":"7"}`},
		{"Generate", `{"metadataGenerate":"12"}`,
			func(c *Client) error {
				_, err := c.Generate(context.Background(), GenerateInput{Toggles: Toggles{Previews: Bool(true), Sprites: Bool(true)}, SceneIDs: []string{"3", "5"}})
				return err
			},
			mGenerate, `{"input":{"covers":false,"sprites":true,"previews":true,"imagePreviews":false,
				"markers":false,"markerImagePreviews":false,"markerScreenshots":false,"transcodes":false,
				"phashes":false,"interactiveHeatmapsSpeeds":false,"sceneIDs":["3","5"],"overwrite":false}}`},
		{"GenerateDefaults", `{"configuration":{"defaults":{"generate":{"covers":true}}}}`,
			func(c *Client) error {
				g, err := c.GenerateDefaults(context.Background())
				if err == nil && (g.Covers == nil || *g.Covers != tru || g.Sprites != nil) {
					err = fmt.Errorf("defaults = %+v", g)
				}
				return err
			},
			qDefaults, ""},
		{"QueueAndDefaults", `{"jobQueue":null,"configuration":{"defaults":{"generate":{"imagePreviews":true}}}}`,
			func(c *Client) error {
				jobs, g, err := c.QueueAndDefaults(context.Background())
				if err == nil && (jobs != nil || g.ImagePreviews == nil || !*g.ImagePreviews || g.Covers != nil) {
					err = fmt.Errorf("queue %v, defaults %+v", jobs, g)
				}
				return err
			},
			qQueueAndDefaults, ""},
		{"Scenes", `{"findScenes":{"count":0,"scenes":[]}}`,
			func(c *Client) error { _, err := c.Scenes(context.Background(), SceneQuery{}); return err },
			qScenes, `{"scene_filter":{"id":{"value":0,"modifier":"GREATER_THAN"}},
				"filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"SceneIDs", `{"findScenes":{"count":0,"scenes":[]}}`,
			func(c *Client) error {
				_, err := c.SceneIDs(context.Background(), SceneQuery{IsMissing: "phash", PerPage: 50})
				return err
			},
			qSceneIDs, `{"scene_filter":{"id":{"value":0,"modifier":"GREATER_THAN"},"is_missing":"phash"},
				"filter":{"page":1,"per_page":50,"sort":"id","direction":"ASC"}}`},
		{"Markers", `{"findSceneMarkers":{"count":0,"scene_markers":[]}}`,
			func(c *Client) error { _, err := c.Markers(context.Background(), MarkerQuery{}); return err },
			qMarkers, `{"scene_marker_filter":{},"filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"KnownScenes", `{"s0":{"id":"4","files":[{"path":"/media/a.mp4"}]},"s2":null}`,
			func(c *Client) error {
				known, err := c.KnownScenes(context.Background(), []string{"4", "x", "9"})
				if err == nil && (len(known) != 1 || fmt.Sprint(known["4"]) != "[/media/a.mp4]") {
					err = fmt.Errorf("known = %v, want scene 4 and its file", known)
				}
				return err
			},
			`query KnownScenes($i0: ID, $i2: ID) { s0: findScene(id: $i0) { id files { path } } s2: findScene(id: $i2) { id files { path } } }`,
			`{"i0":"4","i2":"9"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, answering(http.StatusOK, `{"data":`+tc.answer+`}`))
			c := newTestClient(t, s.URL)
			if err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			r := s.only(t)
			checkGraphQLRequest(t, r, tc.query)
			if tc.vars == "" {
				if len(r.Body.Variables) != 0 {
					t.Errorf("variables = %v, want none", r.Body.Variables)
				}
				return
			}
			jsonEqual(t, "variables", r.Body.Variables, tc.vars)
		})
	}
}

func TestClient_NoKeyNoHeader(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"jobQueue":null}}`))
	c := newTestClient(t, s.URL, func(o *Options) { o.APIKey = "" })
	if _, err := c.JobQueue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h, ok := s.only(t).Header["Apikey"]; ok {
		t.Errorf("ApiKey header sent without a key: %q", h)
	}
}

func TestScenes_FilterVariables(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		q    SceneQuery
		want string
	}{
		{"keyset", SceneQuery{AfterID: 2000, PerPage: 1000},
			`{"scene_filter":{"id":{"value":2000,"modifier":"GREATER_THAN"}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"up to id is inclusive", SceneQuery{AfterID: 10, UpToID: 20, PerPage: 5},
			`{"scene_filter":{"id":{"value":10,"modifier":"GREATER_THAN"},
			                  "AND":{"id":{"value":21,"modifier":"LESS_THAN"}}},
			  "filter":{"page":1,"per_page":5,"sort":"id","direction":"ASC"}}`},
		{"updated after", SceneQuery{UpdatedAfter: "2024-03-10T12:00:00+02:00", PerPage: 1000},
			`{"scene_filter":{"id":{"value":0,"modifier":"GREATER_THAN"},
			                  "updated_at":{"value":"2024-03-10T12:00:00+02:00","modifier":"GREATER_THAN"}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"missing cover", SceneQuery{IsMissing: "cover", UpToID: 99},
			`{"scene_filter":{"id":{"value":0,"modifier":"GREATER_THAN"},"is_missing":"cover",
			                  "AND":{"id":{"value":100,"modifier":"LESS_THAN"}}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, answering(http.StatusOK,
				`{"data":{"findScenes":{"count":1,"scenes":[{"id":"2001","created_at":"2024-03-10T12:00:00+02:00",
				"updated_at":"2024-03-10T12:00:05+02:00","paths":{"preview":"http://x/scene/2001/preview",
				"webp":"http://x/scene/2001/webp","vtt":"http://x/scene/abc_thumbs.vtt","sprite":"http://x/scene/abc_sprite.jpg"}}]}}}`))
			c := newTestClient(t, s.URL)
			page, err := c.Scenes(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, "variables", s.only(t).Body.Variables, tc.want)
			if page.Count != 1 || len(page.Scenes) != 1 || page.Scenes[0].ID != "2001" ||
				page.Scenes[0].Paths.Sprite != "http://x/scene/abc_sprite.jpg" {
				t.Errorf("page = %+v", page)
			}
			want := time.Date(2024, 3, 10, 10, 0, 5, 0, time.UTC)
			if !page.Scenes[0].UpdatedAt.Equal(want) {
				t.Errorf("updated_at = %v, want %v", page.Scenes[0].UpdatedAt, want)
			}
		})
	}
}

func TestMarkers_FilterVariables(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		q    MarkerQuery
		want string
	}{
		{"page", MarkerQuery{Page: 3, PerPage: 100},
			`{"scene_marker_filter":{},"filter":{"page":3,"per_page":100,"sort":"id","direction":"ASC"}}`},
		{"open range", MarkerQuery{SceneIDFrom: 42, UpdatedAfter: "2024-03-10T12:00:00+02:00"},
			`{"scene_marker_filter":{"scene_filter":{"id":{"value":41,"modifier":"GREATER_THAN"}},
			                         "updated_at":{"value":"2024-03-10T12:00:00+02:00","modifier":"GREATER_THAN"}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"open range from the first scene", MarkerQuery{SceneIDFrom: 1},
			`{"scene_marker_filter":{},"filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		{"scene range", MarkerQuery{SceneIDFrom: 10, SceneIDTo: 20, Page: 2, PerPage: 7},
			`{"scene_marker_filter":{"scene_filter":{"id":{"value":10,"value2":20,"modifier":"BETWEEN"}}},
			  "filter":{"page":2,"per_page":7,"sort":"id","direction":"ASC"}}`},
		{"one-scene range", MarkerQuery{SceneIDFrom: 10, SceneIDTo: 10},
			`{"scene_marker_filter":{"scene_filter":{"id":{"value":10,"value2":10,"modifier":"BETWEEN"}}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
		// An inverted range selects no scene; it must not turn into "all
		// markers".
		{"inverted range", MarkerQuery{SceneIDFrom: 20, SceneIDTo: 10},
			`{"scene_marker_filter":{"scene_filter":{"id":{"value":20,"value2":10,"modifier":"BETWEEN"}}},
			  "filter":{"page":1,"per_page":1000,"sort":"id","direction":"ASC"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, answering(http.StatusOK,
				`{"data":{"findSceneMarkers":{"count":1,"scene_markers":[{"id":"5","updated_at":"2024-03-10T12:00:00+02:00",
				"scene":{"id":"42"},"stream":"http://x/scene/42/scene_marker/5/stream",
				"preview":"http://x/scene/42/scene_marker/5/preview","screenshot":"http://x/scene/42/scene_marker/5/screenshot"}]}}}`))
			c := newTestClient(t, s.URL)
			page, err := c.Markers(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, "variables", s.only(t).Body.Variables, tc.want)
			if page.Count != 1 || len(page.Markers) != 1 || page.Markers[0].Scene.ID != "42" ||
				page.Markers[0].Screenshot != "http://x/scene/42/scene_marker/5/screenshot" {
				t.Errorf("page = %+v", page)
			}
		})
	}
}

func TestJobQueue_NullIsEmpty(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"jobQueue":null}}`))
	jobs, err := newTestClient(t, s.URL).JobQueue(context.Background())
	if err != nil || len(jobs) != 0 {
		t.Fatalf("JobQueue = %v, %v; want empty, nil", jobs, err)
	}
}

func TestJobQueue_Decodes(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"jobQueue":[
		{"id":"3","status":"RUNNING","subTasks":["Generating sprites"],"description":"Scanning...","progress":0.25,
		 "startTime":"2024-03-10T12:00:01+02:00","endTime":null,"addTime":"2024-03-10T12:00:00+02:00","error":null},
		{"id":"4","status":"READY","subTasks":null,"description":"Generating...","progress":null,
		 "startTime":null,"endTime":null,"addTime":"2024-03-10T12:00:02+02:00","error":null}]}}`))
	jobs, err := newTestClient(t, s.URL).JobQueue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("jobs = %+v", jobs)
	}
	j := jobs[0]
	if j.ID != "3" || j.Status != JobRunning || !j.IsScan() || j.Progress == nil || *j.Progress != 0.25 ||
		j.StartTime == nil || j.EndTime != nil || len(j.SubTasks) != 1 {
		t.Errorf("job 3 = %+v", j)
	}
	if want := time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC); !j.AddTime.Equal(want) {
		t.Errorf("addTime = %v, want %v", j.AddTime, want)
	}
	if j := jobs[1]; j.Status != JobReady || j.IsScan() || j.Progress != nil || j.StartTime != nil {
		t.Errorf("job 4 = %+v", j)
	}
}

func TestFindJob_NullIsErrJobNotFound(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"findJob":null}}`))
	_, err := newTestClient(t, s.URL).FindJob(context.Background(), "12")
	if !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("FindJob = %v, want ErrJobNotFound", err)
	}
	if !strings.Contains(err.Error(), "12") {
		t.Errorf("error does not name the job: %v", err)
	}
}

func TestStopJob_TrueForUnknownID(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"stopJob":true}}`))
	if err := newTestClient(t, s.URL).StopJob(context.Background(), "999"); err != nil {
		t.Fatal(err)
	}
}

func TestGenerate_RefusesEmptySceneIDs(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"metadataGenerate":"1"}}`))
	c := newTestClient(t, s.URL)
	for _, ids := range [][]string{nil, {}} {
		l, err := c.Generate(context.Background(), GenerateInput{Toggles: Toggles{Previews: Bool(true)}, SceneIDs: ids})
		if err == nil || l.JobID != "" {
			t.Errorf("Generate(sceneIDs %#v) = %q, %v; want a refusal", ids, l.JobID, err)
		}
	}
	if n := len(s.requests()); n != 0 {
		t.Fatalf("%d metadataGenerate requests sent with an empty scene list", n)
	}
}

func TestGenerate_ReturnsJobID(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"metadataGenerate":"31"}}`))
	l, err := newTestClient(t, s.URL).Generate(context.Background(), GenerateInput{SceneIDs: []string{"1"}})
	if err != nil || l.JobID != "31" {
		t.Fatalf("Generate = %q, %v", l.JobID, err)
	}
}

func TestGenerate_NoJobIDIsProtocolError(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"metadataGenerate":""}}`))
	_, err := newTestClient(t, s.URL).Generate(context.Background(), GenerateInput{SceneIDs: []string{"1"}})
	wantKind(t, err, KindProtocol)
}

func TestGenerateDefaults_NullIsAllNil(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"configuration":{"defaults":{"generate":null}}}}`))
	g, err := newTestClient(t, s.URL).GenerateDefaults(context.Background())
	if err != nil || g != (Toggles{}) {
		t.Fatalf("GenerateDefaults = %+v, %v; want all nil", g, err)
	}
}

func TestKnownScenes_Chunks(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, _ *http.Request, b gqlBody) {
		// Answer every alias with the scene it asks about.
		var sb strings.Builder
		sb.WriteString(`{"data":{`)
		n := 0
		for v, id := range b.Variables {
			if n > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `"s%s":{"id":%q}`, strings.TrimPrefix(v, "i"), id)
			n++
		}
		sb.WriteString("}}")
		_, _ = w.Write([]byte(sb.String()))
	})
	c := newTestClient(t, s.URL)
	ids := make([]string, 0, 600)
	for i := range 600 {
		ids = append(ids, fmt.Sprint(i+1))
	}
	known, err := c.KnownScenes(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 600 {
		t.Errorf("known %d scenes, want 600", len(known))
	}
	var aliases []int
	for _, r := range s.requests() {
		aliases = append(aliases, len(r.Body.Variables))
	}
	if fmt.Sprint(aliases) != "[250 250 100]" {
		t.Errorf("aliases per request = %v, want [250 250 100]", aliases)
	}
	for _, r := range s.requests() {
		checkGraphQLRequest(t, r, "")
		if strings.Contains(r.Body.Query, "findScenes") {
			t.Errorf("KnownScenes used findScenes: %s", r.Body.Query)
		}
	}
}

func TestKnownScenes_NothingToAsk(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{}}`))
	c := newTestClient(t, s.URL)
	for _, ids := range [][]string{nil, {}, {"abc", "", "-1", "1e3", "99999999999999999999"}} {
		known, err := c.KnownScenes(context.Background(), ids)
		if err != nil || len(known) != 0 {
			t.Errorf("KnownScenes(%q) = %v, %v", ids, known, err)
		}
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests sent without a numeric id", n)
	}
}

// TestKnownScenes_KeyedByRequestedID: callers look up the ids they passed,
// whatever spelling Stash answers with.
func TestKnownScenes_KeyedByRequestedID(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(http.StatusOK, `{"data":{"s0":{"id":"7"},"s1":null}}`))
	known, err := newTestClient(t, s.URL).KnownScenes(context.Background(), []string{"007", "8"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := known["007"]; !ok || len(known) != 1 {
		t.Errorf("known = %v, want only 007", known)
	}
}

// TestKnownScenes_AnswerLackingAnAlias: a scene whose alias is missing from
// the answer is not known to be deleted; treating it so would drop it from
// the database.
func TestKnownScenes_AnswerLackingAnAlias(t *testing.T) {
	t.Parallel()
	for _, data := range []string{`{"s0":{"id":"1"}}`, `{}`, `{"s0":{"id":"1"},"s1":{"id":"2"},"s9":{"id":"9"}}`} {
		s := newStub(t, answering(http.StatusOK, `{"data":`+data+`}`))
		known, err := newTestClient(t, s.URL).KnownScenes(context.Background(), []string{"1", "2"})
		if data == `{"s0":{"id":"1"},"s1":{"id":"2"},"s9":{"id":"9"}}` {
			// An extra alias is ignored, not counted.
			if _, nine := known["9"]; err != nil || len(known) != 2 || nine {
				t.Errorf("data %s: known = %v, %v", data, known, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("data %s: known = %v, want an error", data, known)
			continue
		}
		wantKind(t, err, KindProtocol)
	}
}

// TestClient_MissingFieldIsAnError: an answer without the field asked for
// must not read as an empty result (no scenes, no markers).
func TestClient_MissingFieldIsAnError(t *testing.T) {
	t.Parallel()
	calls := map[string]func(c *Client) error{
		"JobQueue": func(c *Client) error { _, err := c.JobQueue(context.Background()); return err },
		"FindJob":  func(c *Client) error { _, err := c.FindJob(context.Background(), "1"); return err },
		"StopJob":  func(c *Client) error { return c.StopJob(context.Background(), "1") },
		"Generate": func(c *Client) error {
			_, err := c.Generate(context.Background(), GenerateInput{SceneIDs: []string{"1"}})
			return err
		},
		"GenerateDefaults": func(c *Client) error { _, err := c.GenerateDefaults(context.Background()); return err },
		"Scenes":           func(c *Client) error { _, err := c.Scenes(context.Background(), SceneQuery{}); return err },
		"SceneIDs":         func(c *Client) error { _, err := c.SceneIDs(context.Background(), SceneQuery{}); return err },
		"Markers":          func(c *Client) error { _, err := c.Markers(context.Background(), MarkerQuery{}); return err },
	}
	for name, call := range calls {
		for _, body := range []string{`{"data":{}}`, `{"data":{"other":1}}`, `{"data":null}`, `{}`} {
			c := memClient(t, memTransport{status: http.StatusOK, body: []byte(body), length: -1})
			err := call(c)
			if err == nil {
				t.Errorf("%s with %s: no error", name, body)
				continue
			}
			if errors.Is(err, ErrJobNotFound) {
				t.Errorf("%s with %s: %v; a broken answer is not a forgotten job", name, body, err)
				continue
			}
			wantKind(t, err, KindProtocol)
		}
	}
}

// Stash's clock travels with the answer it belongs to: each call that
// needs it gets the Date header of its own answer, whatever other calls
// answered meanwhile.
func TestServerTime_EachAnswerCarriesItsDate(t *testing.T) {
	t.Parallel()
	date := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	var answers atomic.Int64
	s := newStub(t, func(w http.ResponseWriter, r *http.Request, b gqlBody) {
		d := date.Add(time.Duration(answers.Add(1)-1) * time.Hour)
		w.Header().Set("Date", d.Format(http.TimeFormat))
		switch {
		case strings.Contains(b.Query, "metadataGenerate"):
			_, _ = w.Write([]byte(`{"data":{"metadataGenerate":"7"}}`))
		case strings.Contains(b.Query, "findSceneMarkers"):
			_, _ = w.Write([]byte(`{"data":{"findSceneMarkers":{"count":0,"scene_markers":[]}}}`))
		case strings.Contains(b.Query, "findScenes"):
			_, _ = w.Write([]byte(`{"data":{"findScenes":{"count":0,"scenes":[]}}}`))
		default:
			_, _ = w.Write([]byte(`{"data":{"jobQueue":null}}`))
		}
	})
	c := newTestClient(t, s.URL)
	l, err := c.Generate(context.Background(), GenerateInput{SceneIDs: []string{"1"}})
	if err != nil || l.JobID != "7" || !l.Date.Equal(date) {
		t.Fatalf("Generate = %+v, %v; want job 7 at %v", l, err, date)
	}
	if _, err := c.JobQueue(context.Background()); err != nil { // a later answer, an hour on
		t.Fatal(err)
	}
	p, err := c.Scenes(context.Background(), SceneQuery{})
	if err != nil || !p.Date.Equal(date.Add(2*time.Hour)) {
		t.Fatalf("Scenes date = %v, %v; want %v", p.Date, err, date.Add(2*time.Hour))
	}
	m, err := c.Markers(context.Background(), MarkerQuery{})
	if err != nil || !m.Date.Equal(date.Add(3*time.Hour)) {
		t.Fatalf("Markers date = %v, %v; want %v", m.Date, err, date.Add(3*time.Hour))
	}
	if !l.Date.Equal(date) {
		t.Fatalf("the launch's date moved to %v", l.Date)
	}
}

// TestClient_TimesOut: a server that never answers is unavailable after
// Options.Timeout, for GraphQL and for probes alike.
func TestClient_TimesOut(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request, _ gqlBody) {
		<-r.Context().Done()
	})
	c := newTestClient(t, s.URL, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	_, err := c.JobQueue(context.Background())
	e := wantKind(t, err, KindUnavailable)
	if e.ExitCode() != 69 || !strings.Contains(err.Error(), "stash unavailable at "+s.URL) ||
		!strings.Contains(err.Error(), "timeout") {
		t.Errorf("error = %v (exit %d)", err, e.ExitCode())
	}
	noSecret(t, "timeout error", err.Error())

	_, err = c.Probe(context.Background(), ResPreview, "/scene/1/preview")
	wantKind(t, err, KindUnavailable)
	if !strings.Contains(err.Error(), "timeout") {
		t.Errorf("probe error = %v", err)
	}
}

// TestClient_TimesOutMidBody: a server that sends headers and then stalls
// is also cut off.
func TestClient_TimesOutMidBody(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request, _ gqlBody) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"data":{"jobQueue":[`))
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	c := newTestClient(t, s.URL, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	_, err := c.JobQueue(context.Background())
	wantKind(t, err, KindUnavailable)
	if strings.Count(err.Error(), "stash unavailable") != 1 {
		t.Errorf("error repeats itself: %v", err)
	}
}

func TestClient_CancelledContext(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	s := newStub(t, func(w http.ResponseWriter, r *http.Request, _ gqlBody) {
		close(started)
		<-r.Context().Done()
	})
	c := newTestClient(t, s.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.JobQueue(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("JobQueue after cancel = %v, want context.Canceled", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("cancellation reported as a stash error: %v", err)
	}
}
