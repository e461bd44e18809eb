package stash_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// fakeKey is the key the fake demands; the client must send it everywhere.
const fakeKey = "eyJhbGciOiJIUzI1NiJ9.ZmFrZS1zdGFzaA.F4k3-S3CR3T-9001"

// newFake starts a fake Stash demanding fakeKey and a client for it.
func newFake(t *testing.T, opts ...stashtest.Option) (*stashtest.Server, *stash.Client) {
	t.Helper()
	fake := stashtest.New(t, append([]stashtest.Option{stashtest.WithAPIKey(fakeKey)}, opts...)...)
	return fake, newClient(t, fake.URL(), fakeKey)
}

func newClient(t *testing.T, url, key string) *stash.Client {
	t.Helper()
	c, err := stash.New(stash.Options{URL: url, APIKey: key, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkCalls asserts that every GraphQL request the fake saw carried the key
// and passed schema validation.
func checkCalls(t *testing.T, fake *stashtest.Server) {
	t.Helper()
	for _, c := range fake.Calls() {
		if !c.KeyPresent || !c.KeyValid {
			t.Errorf("%s sent without a valid key", c.OperationName)
		}
		if c.Status != 200 {
			t.Errorf("%s %v answered %d:\n%s", c.Operation, c.Fields, c.Status, c.Query)
		}
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func TestFake_JobQueue(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	jobs, err := c.JobQueue(ctx(t))
	if err != nil || len(jobs) != 0 {
		t.Fatalf("empty queue: %v, %v", jobs, err)
	}
	ids := fake.AddScenes(2)
	for _, id := range ids {
		if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: []string{id}}); err != nil {
			t.Fatal(err)
		}
	}
	fake.Advance(time.Minute)
	jobs, err = c.JobQueue(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].Status != stash.JobRunning || jobs[1].Status != stash.JobReady ||
		jobs[0].Description != stash.DescGenerating || jobs[0].IsScan() {
		t.Fatalf("jobs = %+v", jobs)
	}
	if !jobs[0].AddTime.Equal(stashtest.DefaultStart) || jobs[0].StartTime == nil || !jobs[0].StartTime.Equal(stashtest.DefaultStart) {
		t.Errorf("times = %v %v, want %v", jobs[0].AddTime, jobs[0].StartTime, stashtest.DefaultStart)
	}
	if jobs[1].StartTime != nil || jobs[1].Progress != nil {
		t.Errorf("queued job has start %v progress %v", jobs[1].StartTime, jobs[1].Progress)
	}
	fake.DrainJobs()
	if jobs, err = c.JobQueue(ctx(t)); err != nil || len(jobs) != 0 {
		t.Fatalf("drained queue: %v, %v", jobs, err)
	}
	checkCalls(t, fake)
}

// A failed job's error loses the key before it reaches the caller (and
// from there the ledger, the audit row and the ping).
func TestFindJob_ErrorLosesTheKey(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ids := fake.AddScenes(1)
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Sprites: stash.Bool(true)}, SceneIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	fake.FailJob(launch.JobID, "fetch http://stash/scene/1/stream?apikey="+fakeKey+" failed: key "+fakeKey)
	var j stash.Job
	for j.Error == nil {
		if j, err = c.FindJob(ctx(t), launch.JobID); err != nil || j.Status.Ended() && j.Error == nil {
			t.Fatalf("FindJob = %+v, %v; want it failed", j, err)
		}
	}
	if strings.Contains(*j.Error, fakeKey) || !strings.Contains(*j.Error, "apikey=<redacted>") {
		t.Fatalf("error = %q, want the key redacted", *j.Error)
	}
}

func TestFake_FindJob(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(3)
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Sprites: stash.Bool(true)}, SceneIDs: ids})
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	// Each findJob on the running job ticks it.
	var seen []stash.JobStatus
	for range 5 {
		j, err := c.FindJob(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.ID != id {
			t.Fatalf("FindJob(%s) = job %s", id, j.ID)
		}
		seen = append(seen, j.Status)
		if j.Status.Ended() {
			if j.EndTime == nil || j.Progress == nil || *j.Progress != 1 || j.Error != nil {
				t.Errorf("ended job = %+v", j)
			}
			break
		}
	}
	if seen[len(seen)-1] != stash.JobFinished {
		t.Errorf("statuses %v, want to end FINISHED", seen)
	}
	if !fake.HasResource(ids[2], stashtest.ResourceSprite) {
		t.Error("the job generated nothing")
	}

	if _, err := c.FindJob(ctx(t), "9999"); !errors.Is(err, stash.ErrJobNotFound) {
		t.Errorf("unknown job: %v, want ErrJobNotFound", err)
	}
	fake.ForgetJob(id)
	if _, err := c.FindJob(ctx(t), id); !errors.Is(err, stash.ErrJobNotFound) {
		t.Errorf("forgotten job: %v, want ErrJobNotFound", err)
	}
	checkCalls(t, fake)
}

func TestFake_FindJobFailed(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.FailNextGenerate("ffmpeg not found")
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: fake.AddScenes(1)})
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.FindJob(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != stash.JobFailed || j.Error == nil || *j.Error != "ffmpeg not found" {
		t.Errorf("job = %+v", j)
	}
}

// TestFake_FindJobGraveyard: Stash remembers the last ten ended jobs only.
func TestFake_FindJobGraveyard(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	sid := fake.AddScenes(1)
	var ids []string
	for range 12 {
		launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Covers: stash.Bool(true)}, SceneIDs: sid})
		id := launch.JobID
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	fake.DrainJobs()
	for i, id := range ids {
		j, err := c.FindJob(ctx(t), id)
		if i < 2 {
			if !errors.Is(err, stash.ErrJobNotFound) {
				t.Errorf("job %s (#%d): %+v, %v; want ErrJobNotFound", id, i+1, j, err)
			}
			continue
		}
		if err != nil || j.Status != stash.JobFinished {
			t.Errorf("job %s (#%d): %+v, %v; want FINISHED", id, i+1, j, err)
		}
	}
	checkCalls(t, fake)
}

func TestFake_StopJob(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t, stashtest.WithScenesPerTick(1))
	ids := fake.AddScenes(4)
	launch, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: ids})
	running := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	launch, err = c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: ids[:1]})
	queued := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{queued, running, "424242"} {
		if err := c.StopJob(ctx(t), id); err != nil {
			t.Errorf("StopJob(%s): %v", id, err)
		}
	}
	want := []stashtest.StopCall{{JobID: queued}, {JobID: running}, {JobID: "424242"}}
	got := fake.StopCalls()
	for i := range got {
		if got[i].At.IsZero() {
			t.Errorf("stop call %d has no time", i)
		}
		got[i].At = time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stop calls = %+v, want %+v", got, want)
	}
	if j, err := c.FindJob(ctx(t), queued); err != nil || j.Status != stash.JobCancelled {
		t.Errorf("queued job after stop: %+v, %v", j, err)
	}
	j, err := c.FindJob(ctx(t), running)
	for err == nil && !j.Status.Ended() {
		j, err = c.FindJob(ctx(t), running)
	}
	if err != nil || j.Status != stash.JobCancelled {
		t.Errorf("running job after stop: %+v, %v", j, err)
	}
	checkCalls(t, fake)
}

func TestFake_Generate(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ids := fake.AddScenes(3)
	yes, no := stash.Bool(true), stash.Bool(false)
	in := stash.GenerateInput{Toggles: stash.Toggles{
		Covers: yes, Sprites: yes, Previews: yes, ImagePreviews: yes, Markers: yes,
		MarkerImagePreviews: yes, MarkerScreenshots: yes, Phashes: yes, Transcodes: no, InteractiveHeatmapsSpeeds: no,
	}, SceneIDs: ids[1:], Overwrite: false}
	launch, err := c.Generate(ctx(t), in)
	id := launch.JobID
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.Atoi(id); err != nil {
		t.Errorf("job id %q", id)
	}
	want := map[string]any{
		"covers": true, "sprites": true, "previews": true, "imagePreviews": true, "markers": true,
		"markerImagePreviews": true, "markerScreenshots": true, "transcodes": false, "phashes": true,
		"interactiveHeatmapsSpeeds": false, "sceneIDs": []any{ids[1], ids[2]}, "overwrite": false,
	}
	if got := fake.GenerateInputs(); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("fake recorded %#v\nwant %#v", got, want)
	}

	fake.ResetLog()
	for _, empty := range [][]string{nil, {}} {
		if _, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: empty}); err == nil {
			t.Errorf("Generate(sceneIDs %#v) was not refused", empty)
		}
	}
	if m := fake.Mutations(); len(m) != 0 {
		t.Errorf("empty generate reached Stash: %+v", m)
	}
	checkCalls(t, fake)
}

func TestFake_GenerateDefaults(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	g, err := c.GenerateDefaults(ctx(t))
	if err != nil || g != (stash.Toggles{}) {
		t.Fatalf("no defaults saved: %+v, %v", g, err)
	}
	fake.SetGenerateDefaults(map[string]any{"covers": true, "previews": false, "sprites": true, "phashes": nil})
	g, err = c.GenerateDefaults(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if g.Covers == nil || !*g.Covers || g.Previews == nil || *g.Previews || g.Sprites == nil || !*g.Sprites ||
		g.Phashes != nil || g.Markers != nil {
		t.Errorf("defaults = %s", fmtOptions(g))
	}
	checkCalls(t, fake)
}

func fmtOptions(g stash.Toggles) string {
	v := reflect.ValueOf(g)
	var parts []string
	for i := range v.NumField() {
		f := v.Field(i)
		s := "nil"
		if !f.IsNil() {
			s = fmt.Sprint(f.Elem().Bool())
		}
		parts = append(parts, v.Type().Field(i).Name+"="+s)
	}
	return strings.Join(parts, " ")
}

// TestFake_ScenesKeysetPaging pages a library bigger than a page the way
// the cycle does: by the last id seen.
func TestFake_ScenesKeysetPaging(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	all := fake.AddScenes(2500)
	fake.DeleteScene(all[1200]) // a hole in the ids
	for _, fn := range []func(context.Context, stash.SceneQuery) (stash.ScenePage, error){c.Scenes, c.SceneIDs} {
		var got []string
		var counts, sizes []int
		q := stash.SceneQuery{PerPage: 1000}
		for {
			page, err := fn(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, page.Count)
			sizes = append(sizes, len(page.Scenes))
			if len(page.Scenes) == 0 {
				break
			}
			for _, s := range page.Scenes {
				got = append(got, s.ID)
			}
			last, _ := strconv.ParseInt(page.Scenes[len(page.Scenes)-1].ID, 10, 64)
			q.AfterID = last
		}
		want := slices.Delete(slices.Clone(all), 1200, 1201)
		if !slices.Equal(got, want) {
			t.Errorf("paged %d scenes, want %d in id order", len(got), len(want))
		}
		if fmt.Sprint(sizes) != "[1000 1000 499 0]" || fmt.Sprint(counts) != "[2499 1499 499 0]" {
			t.Errorf("page sizes %v counts %v", sizes, counts)
		}
	}
	// Scenes carries the file URLs, on the address the client used.
	page, err := c.Scenes(ctx(t), stash.SceneQuery{PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := page.Scenes[0]
	osh := fake.SceneOSHash(s.ID)
	if s.Paths.Preview != fake.URL()+"/scene/1/preview" || s.Paths.Webp != fake.URL()+"/scene/1/webp" ||
		s.Paths.Sprite != fake.URL()+"/scene/"+osh+"_sprite.jpg" || s.Paths.VTT != fake.URL()+"/scene/"+osh+"_thumbs.vtt" {
		t.Errorf("paths = %+v", s.Paths)
	}
	if !s.CreatedAt.Equal(stashtest.DefaultStart) || !s.UpdatedAt.Equal(stashtest.DefaultStart) {
		t.Errorf("times = %v, %v", s.CreatedAt, s.UpdatedAt)
	}
	checkCalls(t, fake)
}

// TestFake_ScenesUpdatedAfter: the fake renders times at +02:00 (or in a
// named zone); a cursor taken from an answer must select exactly the later
// edits, whatever zone it is written in.
func TestFake_ScenesUpdatedAfter(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*60*60)
	}
	for _, zone := range []*time.Location{nil, ny} {
		var opts []stashtest.Option
		if zone != nil {
			opts = append(opts, stashtest.WithZone(zone))
		}
		fake, c := newFake(t, opts...)
		ids := fake.AddScenes(5)
		page, err := c.Scenes(ctx(t), stash.SceneQuery{})
		if err != nil {
			t.Fatal(err)
		}
		cursor := page.Scenes[0].UpdatedAt
		if _, off := cursor.Zone(); off == 0 {
			t.Errorf("fake answered in UTC; the test proves nothing")
		}
		fake.Advance(90 * time.Second)
		fake.TouchScene(ids[3])
		fake.TouchScene(ids[1])
		for _, after := range []string{
			cursor.Format(time.RFC3339),
			cursor.UTC().Format(time.RFC3339),
			cursor.In(time.FixedZone("", 9*60*60)).Format(time.RFC3339),
		} {
			page, err := c.Scenes(ctx(t), stash.SceneQuery{UpdatedAfter: after})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range page.Scenes {
				got = append(got, s.ID)
				if !s.UpdatedAt.Equal(fake.SceneUpdatedAt(s.ID)) {
					t.Errorf("scene %s updated_at %v, want %v", s.ID, s.UpdatedAt, fake.SceneUpdatedAt(s.ID))
				}
			}
			if want := []string{ids[1], ids[3]}; !slices.Equal(got, want) || page.Count != 2 {
				t.Errorf("updated after %s: %v (count %d), want %v", after, got, page.Count, want)
			}
		}
		// Strictly after: the newest timestamp itself selects nothing.
		page, err = c.Scenes(ctx(t), stash.SceneQuery{UpdatedAfter: fake.Now().Format(time.RFC3339)})
		if err != nil || len(page.Scenes) != 0 {
			t.Errorf("updated after now: %+v, %v", page, err)
		}
		checkCalls(t, fake)
	}
}

func TestFake_SceneIDsIsMissingUpToID(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ids := fake.AddScenes(10)
	for _, i := range []int{0, 2, 3, 7} {
		fake.SetResources(ids[i], stashtest.ResourceCover)
	}
	fake.SetResources(ids[4], stashtest.ResourcePhash)
	cases := []struct {
		q    stash.SceneQuery
		want []string
	}{
		{stash.SceneQuery{IsMissing: "cover"}, []string{ids[1], ids[4], ids[5], ids[6], ids[8], ids[9]}},
		{stash.SceneQuery{IsMissing: "cover", UpToID: 6}, []string{ids[1], ids[4], ids[5]}},
		{stash.SceneQuery{IsMissing: "cover", AfterID: 2, UpToID: 7}, []string{ids[4], ids[5], ids[6]}},
		{stash.SceneQuery{IsMissing: "phash", AfterID: 3, UpToID: 5}, []string{ids[3]}},
		{stash.SceneQuery{UpToID: 3, PerPage: 2}, []string{ids[0], ids[1]}},
	}
	for _, tc := range cases {
		page, err := c.SceneIDs(ctx(t), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range page.Scenes {
			got = append(got, s.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, got, tc.want)
		}
	}
	checkCalls(t, fake)
}

func TestFake_Markers(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	scenes := fake.AddScenes(6)
	perScene := map[string][]string{}
	var all []string
	for i, sid := range scenes {
		for range i % 3 { // 0, 1, 2, 0, 1, 2 markers
			mid := fake.AddMarker(sid)
			perScene[sid] = append(perScene[sid], mid)
			all = append(all, mid)
		}
	}
	ids := func(p stash.MarkerPage) []string {
		var out []string
		for _, m := range p.Markers {
			out = append(out, m.ID)
		}
		return out
	}

	// Numbered pages, each of PerPage markers, until one comes back short.
	var got []string
	for page := 1; ; page++ {
		p, err := c.Markers(ctx(t), stash.MarkerQuery{Page: page, PerPage: 2})
		if err != nil {
			t.Fatal(err)
		}
		if p.Count != len(all) {
			t.Errorf("page %d count %d, want %d", page, p.Count, len(all))
		}
		got = append(got, ids(p)...)
		if len(p.Markers) < 2 {
			break
		}
	}
	if !slices.Equal(got, all) {
		t.Errorf("paged markers %v, want %v", got, all)
	}

	sid, _ := strconv.ParseInt(scenes[2], 10, 64)
	p, err := c.Markers(ctx(t), stash.MarkerQuery{SceneIDFrom: sid, SceneIDTo: sid})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p), perScene[scenes[2]]) || p.Count != 2 {
		t.Errorf("markers of scene %s: %v, want %v", scenes[2], ids(p), perScene[scenes[2]])
	}
	m := p.Markers[0]
	base := fmt.Sprintf("%s/scene/%s/scene_marker/%s/", fake.URL(), scenes[2], m.ID)
	if m.Scene.ID != scenes[2] || m.Stream != base+"stream" || m.Preview != base+"preview" || m.Screenshot != base+"screenshot" ||
		!m.UpdatedAt.Equal(stashtest.DefaultStart) {
		t.Errorf("marker = %+v", m)
	}

	from, _ := strconv.ParseInt(scenes[1], 10, 64)
	to, _ := strconv.ParseInt(scenes[4], 10, 64)
	p, err = c.Markers(ctx(t), stash.MarkerQuery{SceneIDFrom: from, SceneIDTo: to})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(perScene[scenes[1]], perScene[scenes[2]], perScene[scenes[4]])
	if !slices.Equal(ids(p), want) {
		t.Errorf("markers of scenes %d-%d: %v, want %v", from, to, ids(p), want)
	}
	p, err = c.Markers(ctx(t), stash.MarkerQuery{SceneIDFrom: to, SceneIDTo: from})
	if err != nil || len(p.Markers) != 0 {
		t.Errorf("inverted range: %v, %v; want none", ids(p), err)
	}

	fake.Advance(time.Minute)
	fake.TouchMarker(all[3])
	p, err = c.Markers(ctx(t), stash.MarkerQuery{UpdatedAfter: stashtest.DefaultStart.UTC().Format(time.RFC3339)})
	if err != nil || !slices.Equal(ids(p), all[3:4]) {
		t.Errorf("updated markers: %v, %v; want %v", ids(p), err, all[3:4])
	}
	checkCalls(t, fake)
}

func TestFake_KnownScenes(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	ids := fake.AddScenes(300)
	fake.DeleteScene(ids[10])
	fake.DeleteScene(ids[299])
	ask := slices.Concat(ids, []string{"99999", "abc", "", "-3", "1.0", "0x1f"})
	known, err := c.KnownScenes(ctx(t), ask)
	if err != nil {
		t.Fatal(err)
	}
	has := func(id string) bool { _, ok := known[id]; return ok }
	if len(known) != 298 || has(ids[10]) || has(ids[299]) || !has(ids[0]) || !has(ids[298]) || has("99999") {
		t.Errorf("known %d scenes (want 298): %s=%v %s=%v", len(known), ids[10], has(ids[10]), ids[299], has(ids[299]))
	}
	if got := known[ids[0]]; len(got) != 1 || got[0] != "/data/videos/scene1.mp4" {
		t.Errorf("scene %s's files = %v, want its video's path", ids[0], got)
	}
	if n := fake.CountField("findScene"); n != 301 {
		t.Errorf("asked findScene %d times, want 301 (numeric ids only)", n)
	}
	if n := fake.CountField("findScenes"); n != 0 {
		t.Errorf("used findScenes(ids:), which fails whole on one unknown id")
	}
	checkCalls(t, fake)
}

func TestFake_Probe(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	sid := fake.AddScene(stashtest.SceneResources(stashtest.ResourcePreview, stashtest.ResourceSprite))
	bare := fake.AddScene()
	gone := fake.AddScene()
	withMarkers := fake.AddScene()
	mPresent := fake.AddMarker(withMarkers, stashtest.MarkerResources(stashtest.ResourceMarkerStream,
		stashtest.ResourceMarkerPreview, stashtest.ResourceMarkerScreenshot))
	mBare := fake.AddMarker(withMarkers)
	mGone := fake.AddMarker(withMarkers)

	page, err := c.Scenes(ctx(t), stash.SceneQuery{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]stash.ScenePaths{}
	for _, s := range page.Scenes {
		paths[s.ID] = s.Paths
	}
	mp, err := c.Markers(ctx(t), stash.MarkerQuery{})
	if err != nil {
		t.Fatal(err)
	}
	markers := map[string]stash.Marker{}
	for _, m := range mp.Markers {
		markers[m.ID] = m
	}
	fake.DeleteScene(gone)
	fake.DeleteMarker(mGone)
	fake.ResetLog()

	cases := []struct {
		r    stash.Resource
		url  string
		want stash.ProbeResult
	}{
		{stash.ResPreview, paths[sid].Preview, stash.Present},
		{stash.ResSprite, paths[sid].Sprite, stash.Present},
		{stash.ResWebp, paths[sid].Webp, stash.Missing},
		{stash.ResVTT, paths[sid].VTT, stash.Missing},
		{stash.ResPreview, paths[bare].Preview, stash.Missing},
		{stash.ResPreview, paths[gone].Preview, stash.Gone},
		{stash.ResWebp, paths[gone].Webp, stash.Gone},
		{stash.ResMarkerStream, markers[mPresent].Stream, stash.Present},
		{stash.ResMarkerPreview, markers[mPresent].Preview, stash.Present},
		{stash.ResMarkerScreenshot, markers[mPresent].Screenshot, stash.Present},
		{stash.ResMarkerStream, markers[mBare].Stream, stash.Missing},
		{stash.ResMarkerPreview, markers[mBare].Preview, stash.Missing},       // PNG placeholder
		{stash.ResMarkerScreenshot, markers[mBare].Screenshot, stash.Missing}, // PNG placeholder
		{stash.ResMarkerStream, markers[mGone].Stream, stash.Gone},
		{stash.ResMarkerScreenshot, markers[mGone].Screenshot, stash.Gone},
	}
	for _, tc := range cases {
		for _, u := range []string{tc.url, stash.FilePath(tc.url)} {
			got, err := c.Probe(ctx(t), tc.r, u)
			if err != nil || got != tc.want {
				t.Errorf("Probe(%s, %s) = %v, %v; want %v", tc.r, u, got, err, tc.want)
			}
		}
	}
	for _, f := range fake.FileRequests() {
		if f.Method != "GET" || f.Range != "bytes=0-0" || !f.KeyPresent || !f.KeyValid {
			t.Errorf("file request %+v", f)
		}
	}
	if n := len(fake.FileRequests()); n != 2*len(cases) {
		t.Errorf("%d file requests, want %d", n, 2*len(cases))
	}
	if n := len(fake.Calls()); n != 0 {
		t.Errorf("probes made %d GraphQL calls", n)
	}

	// Without the key, Stash redirects files to its login page (302) or,
	// for the hash-named ones, answers 401.
	noKey := newClient(t, fake.URL(), "")
	for _, u := range []string{paths[sid].Preview, paths[sid].Sprite, markers[mPresent].Screenshot} {
		_, err := noKey.Probe(ctx(t), stash.ResPreview, u)
		var e *stash.Error
		if !errors.As(err, &e) || e.Kind != stash.KindAuth || e.ExitCode() != 77 {
			t.Errorf("probe %s without key: %v", u, err)
		}
	}
	wrong := newClient(t, fake.URL(), "not-the-key")
	if _, err := wrong.Probe(ctx(t), stash.ResPreview, paths[sid].Preview); !stash.IsKind(err, stash.KindAuth) {
		t.Errorf("probe with wrong key: %v", err)
	}
	for _, f := range fake.FileRequests() {
		if strings.Contains(f.Path, "login") {
			t.Errorf("probe followed a redirect to %s", f.Path)
		}
	}
}

// TestFake_StreamURLKey: the fake embeds the key in stream URLs, as Stash
// does; FilePath must drop it.
func TestFake_StreamURLKey(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.AddScene()
	// The client never asks for paths.stream; ask the way a careless
	// client would, to prove the fake's URL does carry the key.
	page, err := c.Scenes(ctx(t), stash.SceneQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range fake.Calls() {
		if strings.Contains(q.Query, "stream") {
			t.Errorf("scene query asks for stream: %s", q.Query)
		}
	}
	stream := strings.TrimSuffix(page.Scenes[0].Paths.Preview, "preview") + "stream?apikey=" + fakeKey
	if got := stash.FilePath(stream); got != "/scene/1/stream" {
		t.Errorf("FilePath = %q", got)
	}
}

func TestFake_Auth(t *testing.T) {
	t.Parallel()
	fake, _ := newFake(t)
	for _, key := range []string{"", "wrong-key"} {
		c := newClient(t, fake.URL(), key)
		_, err := c.JobQueue(ctx(t))
		var e *stash.Error
		if !errors.As(err, &e) || e.Kind != stash.KindAuth || e.ExitCode() != 77 {
			t.Fatalf("key %q: %v, want KindAuth", key, err)
		}
		if _, err := c.Generate(ctx(t), stash.GenerateInput{SceneIDs: []string{"1"}}); !stash.IsKind(err, stash.KindAuth) {
			t.Errorf("key %q: generate: %v", key, err)
		}
	}
	if n := len(fake.GenerateInputs()); n != 0 {
		t.Errorf("%d generates executed without a valid key", n)
	}
	forbidden := stashtest.New(t, stashtest.WithForbidden())
	if _, err := newClient(t, forbidden.URL(), "").JobQueue(ctx(t)); !stash.IsKind(err, stash.KindAuth) {
		t.Errorf("forbidden: %v, want KindAuth", err)
	}
}

// TestFake_Faults: what the caller sees for each misbehaviour the fake can
// script.
func TestFake_Faults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault stashtest.FaultKind
		kind  stash.Kind
	}{
		{stashtest.FaultStatus500, stash.KindUnavailable},
		{stashtest.FaultHTML, stash.KindUnavailable},
		{stashtest.FaultTruncatedJSON, stash.KindUnavailable},
		{stashtest.FaultNotJSON, stash.KindUnavailable},
		{stashtest.FaultGraphQLError, stash.KindGraphQL},
		{stashtest.FaultHugeBody, stash.KindProtocol},
		{stashtest.FaultDrop, stash.KindUnavailable},
	}
	for _, tc := range cases {
		t.Run(string(tc.fault), func(t *testing.T) {
			t.Parallel()
			fake, c := newFake(t)
			fake.InjectFault(stashtest.Fault{Kind: tc.fault, Field: "findJob", Message: "job manager is gone", Times: 1})
			_, err := c.FindJob(ctx(t), "1")
			var e *stash.Error
			if !errors.As(err, &e) || e.Kind != tc.kind {
				t.Fatalf("FindJob = %v, want kind %d", err, tc.kind)
			}
			if tc.kind == stash.KindUnavailable && !strings.Contains(err.Error(), "stash unavailable at "+fake.URL()) {
				t.Errorf("error = %v", err)
			}
			if tc.fault == stashtest.FaultGraphQLError && !strings.Contains(err.Error(), "job manager is gone") {
				t.Errorf("error = %v", err)
			}
			if strings.Contains(err.Error(), fakeKey) || len(err.Error()) > 500 {
				t.Errorf("error = %v", err)
			}
			// The fault was used up; the next call goes through.
			if _, err := c.FindJob(ctx(t), "1"); !errors.Is(err, stash.ErrJobNotFound) {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

// TestFake_GenerateAfterExecuteFault: Stash started the job but the answer
// was lost; the error must not claim nothing happened (the caller checks
// the queue).
func TestFake_GenerateAfterExecuteFault(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultStatus500, Field: "metadataGenerate", AfterExecute: true, Times: 1})
	_, err := c.Generate(ctx(t), stash.GenerateInput{Toggles: stash.Toggles{Previews: stash.Bool(true)}, SceneIDs: fake.AddScenes(1)})
	if !stash.IsKind(err, stash.KindUnavailable) {
		t.Fatalf("Generate = %v", err)
	}
	jobs, err := c.JobQueue(ctx(t))
	if err != nil || len(jobs) != 1 {
		t.Errorf("queue after a lost answer: %v, %v", jobs, err)
	}
}

func TestFake_Hang(t *testing.T) {
	t.Parallel()
	fake := stashtest.New(t, stashtest.WithAPIKey(fakeKey))
	c, err := stash.New(stash.Options{URL: fake.URL(), APIKey: fakeKey, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang})
	_, err = c.JobQueue(ctx(t))
	if !stash.IsKind(err, stash.KindUnavailable) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("JobQueue against a hung Stash = %v", err)
	}
	fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Path: "/scene/"})
	if _, err := c.Probe(ctx(t), stash.ResPreview, "/scene/1/preview"); !stash.IsKind(err, stash.KindUnavailable) {
		t.Fatalf("Probe against a hung Stash = %v", err)
	}
}

func TestFake_Down(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	fake.Down()
	_, err := c.JobQueue(ctx(t))
	var e *stash.Error
	if !errors.As(err, &e) || e.Kind != stash.KindUnavailable || e.ExitCode() != 69 ||
		!strings.Contains(err.Error(), "stash unavailable at "+fake.URL()) {
		t.Fatalf("JobQueue while down = %v", err)
	}
	if err := fake.Up(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JobQueue(ctx(t)); err != nil {
		t.Fatalf("JobQueue after Up: %v", err)
	}
}

func TestFake_ServerTimeIsStashClock(t *testing.T) {
	t.Parallel()
	fake, c := newFake(t)
	for range 2 {
		p, err := c.Scenes(ctx(t), stash.SceneQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Date.Equal(fake.Now()) {
			t.Errorf("page date = %v, want the fake's %v", p.Date, fake.Now())
		}
		fake.Advance(36 * time.Hour)
	}
}
