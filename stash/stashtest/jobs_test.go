package stashtest

import (
	"strconv"
	"testing"
	"time"
)

const jobQueueQ = `{ jobQueue { id status progress } }`

func TestJobQueue_NullWhenEmpty(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	r := c.do(jobQueueQ, nil)
	if string(r.Raw) != `{"data":{"jobQueue":null}}` {
		t.Fatalf("body %s", r.Raw)
	}
	id := c.generate(map[string]any{"covers": true})
	if q := c.ok(jobQueueQ, nil)["jobQueue"].([]any); len(q) != 1 || dig(q, 0, "id") != id {
		t.Fatalf("queue %v", q)
	}
	c.findJob(id) // ticks it to the end
	if r := c.do(jobQueueQ, nil); string(r.Raw) != `{"data":{"jobQueue":null}}` {
		t.Fatalf("ended job stays in queue: %s", r.Raw)
	}
}

func TestJobs_RunOneAtATime(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddScenes(3)
	c := newClient(t, s)
	t0 := s.Now()
	a := c.generate(map[string]any{"covers": true})
	s.Advance(time.Minute)
	b := c.generate(map[string]any{"previews": true})
	if a != "1" || b != "2" {
		t.Fatalf("ids %s %s", a, b)
	}
	q := c.ok(jobQueueQ, nil)["jobQueue"].([]any)
	if len(q) != 2 || dig(q, 0, "status") != "RUNNING" || dig(q, 1, "status") != "READY" {
		t.Fatalf("queue %v", q)
	}
	if dig(q, 0, "progress") != float64(0) || dig(q, 1, "progress") != nil {
		t.Errorf("progress running %v ready %v", dig(q, 0, "progress"), dig(q, 1, "progress"))
	}
	jb := c.findJob(b) // not the head: no tick
	if jb["status"] != "READY" || jb["startTime"] != nil || jb["description"] != "Generating..." {
		t.Fatalf("b %v", jb)
	}
	s.Advance(time.Minute)
	ja := c.findJob(a)
	if ja["status"] != "FINISHED" || ja["progress"] != float64(1) || ja["error"] != nil {
		t.Fatalf("a %v", ja)
	}
	if ja["addTime"] != t0.Format(time.RFC3339) || ja["startTime"] != t0.Format(time.RFC3339) ||
		ja["endTime"] != t0.Add(2*time.Minute).Format(time.RFC3339) {
		t.Errorf("a times %v %v %v", ja["addTime"], ja["startTime"], ja["endTime"])
	}
	jb = c.findJob(b) // b became head when a ended; this poll runs it
	if jb["status"] != "FINISHED" || jb["startTime"] != t0.Add(2*time.Minute).Format(time.RFC3339) {
		t.Fatalf("b %v", jb)
	}
}

func TestJobs_ProgressPerTick(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1))
	ids := s.AddScenes(4)
	c := newClient(t, s)
	id := c.generate(map[string]any{"covers": true})
	for i, want := range []float64{0.25, 0.5, 0.75} {
		j := c.findJob(id)
		if j["status"] != "RUNNING" || j["progress"] != want {
			t.Fatalf("poll %d: %v", i, j)
		}
		if !s.HasResource(ids[i], ResourceCover) || s.HasResource(ids[i+1], ResourceCover) {
			t.Fatalf("poll %d: covers out of step", i)
		}
	}
	if j := c.findJob(id); j["status"] != "FINISHED" || j["progress"] != float64(1) {
		t.Fatalf("last poll %v", j)
	}
}

func TestJobs_GraveyardKeepsLastTen(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	for range 12 {
		c.generate(map[string]any{"covers": true})
	}
	s.DrainJobs()
	for i := 1; i <= 12; i++ {
		j := c.findJob(strconv.Itoa(i))
		if i <= 2 && j != nil {
			t.Errorf("job %d should be forgotten: %v", i, j)
		}
		if i > 2 && (j == nil || j["status"] != "FINISHED") {
			t.Errorf("job %d: %v", i, j)
		}
	}
	if j := c.findJob("99"); j != nil {
		t.Errorf("unknown job %v", j)
	}
	r := c.do(findJobQ, map[string]any{"id": "x"})
	if r.Status != 200 || len(r.Errors) != 1 || r.Data["findJob"] != nil {
		t.Errorf("non-numeric id: %s", r.Raw)
	}
}

func TestStopJob_Transitions(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1), WithStopTicks(2))
	ids := s.AddScenes(4)
	c := newClient(t, s)
	stop := func(id string) {
		t.Helper()
		if c.ok(`mutation($id: ID!) { stopJob(job_id: $id) }`, map[string]any{"id": id})["stopJob"] != true {
			t.Fatal("stopJob returned false")
		}
	}
	a := c.generate(map[string]any{"covers": true})
	b := c.generate(map[string]any{"covers": true})
	s.Tick() // a: scene 1 done
	s.Advance(time.Second)

	stop(b) // READY → CANCELLED at once
	jb := c.findJob(b)
	if jb["status"] != "CANCELLED" || jb["endTime"] != s.Now().Format(time.RFC3339) || jb["startTime"] != nil {
		t.Fatalf("b %v", jb)
	}
	stop(a) // RUNNING → STOPPING
	if q := c.ok(jobQueueQ, nil)["jobQueue"].([]any); len(q) != 1 || dig(q, 0, "status") != "STOPPING" {
		t.Fatalf("queue %v", q)
	}
	if j := c.findJob(a); j["status"] != "STOPPING" {
		t.Fatalf("a after one stop tick %v", j)
	}
	// The scene in flight (the second) was completed; no more.
	if !s.HasResource(ids[1], ResourceCover) || s.HasResource(ids[2], ResourceCover) {
		t.Fatal("in-flight scene not finished, or job kept going")
	}
	if j := c.findJob(a); j["status"] != "CANCELLED" || j["endTime"] == nil {
		t.Fatalf("a %v", j)
	}
	stop("12345") // unknown: still true
	stop(a)       // ended: still true
	if r := c.do(`mutation { stopJob(job_id: "x") }`, nil); len(r.Errors) != 1 || r.Data != nil {
		t.Errorf("non-numeric stopJob: %s", r.Raw)
	}
	if n := len(s.StopCalls()); n != 4 {
		t.Errorf("stop calls %d", n)
	}
}

func TestStopAllJobs(t *testing.T) {
	t.Parallel()
	s := New(t, WithStopTicks(0))
	s.AddScenes(2)
	c := newClient(t, s)
	a := c.generate(map[string]any{"covers": true})
	b := c.generate(map[string]any{"covers": true})
	c.ok(`mutation { stopAllJobs }`, nil)
	if c.findJob(a)["status"] != "CANCELLED" || c.findJob(b)["status"] != "CANCELLED" {
		t.Fatal("not all cancelled")
	}
	if st := s.StopCalls(); len(st) != 1 || !st[0].All {
		t.Errorf("stop calls %v", st)
	}
}

func TestGenerate_SceneIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sceneIDs any // nil: absent
		want     []bool
	}{
		{"absent means whole library", nil, []bool{true, true, true}},
		{"empty means whole library", []any{}, []bool{true, true, true}},
		{"subset", []any{"1", "3"}, []bool{true, false, true}},
		{"one unknown id spoils all", []any{"1", "999"}, []bool{false, false, false}},
		{"one non-numeric id spoils all", []any{"1", "abc"}, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			ids := s.AddScenes(3)
			c := newClient(t, s)
			in := map[string]any{"covers": true}
			if tt.sceneIDs != nil {
				in["sceneIDs"] = tt.sceneIDs
			}
			j := c.findJob(c.generate(in))
			if j["status"] != "FINISHED" || j["error"] != nil {
				t.Fatalf("job %v", j)
			}
			for i, id := range ids {
				if got := s.HasResource(id, ResourceCover); got != tt.want[i] {
					t.Errorf("scene %s cover = %v, want %v", id, got, tt.want[i])
				}
			}
		})
	}
}

func TestGenerate_Toggles(t *testing.T) {
	t.Parallel()
	all := []Resource{ResourceCover, ResourcePhash, ResourcePreview, ResourceWebP, ResourceSprite, ResourceVTT}
	allM := []Resource{ResourceMarkerStream, ResourceMarkerPreview, ResourceMarkerScreenshot}
	tests := []struct {
		name  string
		in    map[string]any
		want  []Resource
		wantM []Resource
	}{
		{"covers", map[string]any{"covers": true}, []Resource{ResourceCover}, nil},
		{"phashes", map[string]any{"phashes": true}, []Resource{ResourcePhash}, nil},
		{"previews", map[string]any{"previews": true}, []Resource{ResourcePreview}, nil},
		{"previews with images", map[string]any{"previews": true, "imagePreviews": true}, []Resource{ResourcePreview, ResourceWebP}, nil},
		{"image previews alone do nothing", map[string]any{"imagePreviews": true}, nil, nil},
		{"sprites", map[string]any{"sprites": true}, []Resource{ResourceSprite, ResourceVTT}, nil},
		{"markers", map[string]any{"markers": true}, nil, []Resource{ResourceMarkerStream}},
		{"markers with images", map[string]any{"markers": true, "markerImagePreviews": true, "markerScreenshots": true}, nil, allM},
		{"marker images need markers", map[string]any{"markerImagePreviews": true, "markerScreenshots": true}, nil, nil},
		{"record only", map[string]any{"transcodes": true, "interactiveHeatmapsSpeeds": true, "overwrite": true}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New(t)
			id := s.AddScene()
			mid := s.AddMarker(id)
			c := newClient(t, s)
			c.findJob(c.generate(tt.in))
			for _, r := range all {
				want := contains(tt.want, r)
				if got := s.HasResource(id, r); got != want {
					t.Errorf("%s = %v, want %v", r, got, want)
				}
			}
			for _, r := range allM {
				want := contains(tt.wantM, r)
				if got := s.MarkerHasResource(mid, r); got != want {
					t.Errorf("%s = %v, want %v", r, got, want)
				}
			}
		})
	}
}

func contains(list []Resource, r Resource) bool {
	for _, x := range list {
		if x == r {
			return true
		}
	}
	return false
}

func TestGenerate_ScriptedFailures(t *testing.T) {
	t.Parallel()
	s := New(t)
	ids := s.AddScenes(2)
	m := s.AddMarker(ids[0])
	s.FailResource(ids[0], ResourcePreview)
	s.FailMarkerResource(m, ResourceMarkerStream)
	c := newClient(t, s)
	j := c.findJob(c.generate(map[string]any{"previews": true, "covers": true, "markers": true}))
	if j["status"] != "FINISHED" {
		t.Fatalf("job %v", j)
	}
	if s.HasResource(ids[0], ResourcePreview) || !s.HasResource(ids[0], ResourceCover) || !s.HasResource(ids[1], ResourcePreview) {
		t.Error("FailResource not applied to exactly one file")
	}
	if s.MarkerHasResource(m, ResourceMarkerStream) {
		t.Error("FailMarkerResource ignored")
	}

	s.FailNextGenerate("ffmpeg exploded")
	j = c.findJob(c.generate(map[string]any{"covers": true}))
	if j["status"] != "FAILED" || j["error"] != "ffmpeg exploded" || j["endTime"] == nil {
		t.Fatalf("failed job %v", j)
	}
	if j := c.findJob(c.generate(map[string]any{"covers": true})); j["status"] != "FINISHED" {
		t.Fatalf("FailNextGenerate leaked: %v", j)
	}
	s.FailJob("5", "boom")
	c.generate(map[string]any{"covers": true}) // 4
	c.generate(map[string]any{"covers": true}) // 5
	s.DrainJobs()
	if c.findJob("4")["status"] != "FINISHED" || c.findJob("5")["error"] != "boom" {
		t.Error("FailJob hit the wrong job")
	}
}

func TestScan(t *testing.T) {
	t.Parallel()
	s := New(t, WithScanTicks(2))
	c := newClient(t, s)
	id := str(c.ok(`mutation { metadataScan(input: {paths: ["/data"], rescan: false}) }`, nil)["metadataScan"])
	if j := c.findJob(id); j["status"] != "RUNNING" || j["description"] != "Scanning..." || j["progress"] != 0.5 {
		t.Fatalf("scan %v", j)
	}
	if j := c.findJob(id); j["status"] != "FINISHED" {
		t.Fatalf("scan %v", j)
	}
	if in := s.ScanInputs(); len(in) != 1 || dig(in[0], "paths", 0) != "/data" || in[0]["rescan"] != false {
		t.Errorf("scan inputs %v", in)
	}
}

func TestRestart_ResetsJobsKeepsLibrary(t *testing.T) {
	t.Parallel()
	s := New(t)
	id := s.AddScene()
	c := newClient(t, s)
	c.generate(map[string]any{"covers": true})
	c.generate(map[string]any{"covers": true})
	c.findJob("1")
	s.Restart()
	if j := c.findJob("1"); j != nil {
		t.Fatalf("job survived restart: %v", j)
	}
	if r := c.do(jobQueueQ, nil); string(r.Raw) != `{"data":{"jobQueue":null}}` {
		t.Fatalf("queue survived restart: %s", r.Raw)
	}
	if got := c.generate(map[string]any{"phashes": true}); got != "1" {
		t.Fatalf("id after restart %s", got)
	}
	if !s.HasResource(id, ResourceCover) || c.ok(`{ findScene(id: "`+id+`") { id } }`, nil)["findScene"] == nil {
		t.Fatal("library lost")
	}
}

func TestForgetJob(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1))
	s.AddScenes(3)
	c := newClient(t, s)
	a := c.generate(map[string]any{"covers": true})
	b := c.generate(map[string]any{"covers": true})
	if c.findJob(a)["status"] != "RUNNING" {
		t.Fatal("a not running")
	}
	s.ForgetJob(a)
	if j := c.findJob(a); j != nil {
		t.Fatalf("forgotten job found: %v", j)
	}
	if j := c.findJob(b); j["status"] != "RUNNING" {
		t.Fatalf("next job did not start: %v", j)
	}
}

func TestJobs_ListsForTests(t *testing.T) {
	t.Parallel()
	s := New(t)
	c := newClient(t, s)
	c.generate(map[string]any{"covers": true})
	c.generate(map[string]any{"covers": true})
	s.Tick()
	js := s.Jobs()
	if len(js) != 2 || js[0].ID != "2" || js[0].Status != JobRunning || js[1].ID != "1" || js[1].Status != JobFinished {
		t.Fatalf("jobs %+v", js)
	}
}
