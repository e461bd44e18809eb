package stashtest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const findScenesQ = `query($f: SceneFilterType, $ff: FindFilterType, $ids: [ID!]) {
	findScenes(scene_filter: $f, filter: $ff, ids: $ids) { count scenes { id } } }`

func sceneIDs(d map[string]any) string {
	var ids []string
	for _, sc := range dig(d, "findScenes", "scenes").([]any) {
		ids = append(ids, str(dig(sc, "id")))
	}
	return strings.Join(ids, ",")
}

func TestFindScenes_Filters(t *testing.T) {
	t.Parallel()
	s := New(t)
	t0 := s.Now()
	for i := 1; i <= 5; i++ {
		s.AddScene(SceneTitle(fmt.Sprintf("t%d", 6-i)))
		s.Advance(time.Minute)
	}
	s.SetResources("2", ResourceCover)
	s.SetResources("4", ResourceCover, ResourcePhash)
	s.Advance(time.Hour)
	s.TouchScene("1")
	s.AddMarker("3")
	c := newClient(t, s)
	ts := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	all := map[string]any{"per_page": -1, "sort": "id"}
	tests := []struct {
		name string
		f    map[string]any
		ff   map[string]any
		want string
	}{
		{"no filter default paging title sort", nil, nil, "5,4,3,2,1"},
		{"id equals", map[string]any{"id": map[string]any{"value": 3, "modifier": "EQUALS"}}, all, "3"},
		{"id not equals", map[string]any{"id": map[string]any{"value": 3, "modifier": "NOT_EQUALS"}}, all, "1,2,4,5"},
		{"id greater", map[string]any{"id": map[string]any{"value": 3, "modifier": "GREATER_THAN"}}, all, "4,5"},
		{"id less", map[string]any{"id": map[string]any{"value": 3, "modifier": "LESS_THAN"}}, all, "1,2"},
		{"id between inclusive", map[string]any{"id": map[string]any{"value": 2, "value2": 4, "modifier": "BETWEEN"}}, all, "2,3,4"},
		{"updated_at greater is strict", map[string]any{"updated_at": map[string]any{"value": ts(2 * time.Minute), "modifier": "GREATER_THAN"}}, all, "1,4,5"},
		{"updated_at in stash local format", map[string]any{"updated_at": map[string]any{"value": t0.Add(2 * time.Minute).Format("2006-01-02 15:04:05"), "modifier": "GREATER_THAN"}}, all, "1,4,5"},
		{"updated_at in UTC", map[string]any{"updated_at": map[string]any{"value": t0.Add(2 * time.Minute).UTC().Format(time.RFC3339), "modifier": "GREATER_THAN"}}, all, "1,4,5"},
		{"created_at less", map[string]any{"created_at": map[string]any{"value": ts(2 * time.Minute), "modifier": "LESS_THAN"}}, all, "1,2"},
		{"created_at between", map[string]any{"created_at": map[string]any{"value": ts(time.Minute), "value2": ts(3 * time.Minute), "modifier": "BETWEEN"}}, all, "2,3,4"},
		{"is_missing cover", map[string]any{"is_missing": "cover"}, all, "1,3,5"},
		{"is_missing phash", map[string]any{"is_missing": "phash"}, all, "1,2,3,5"},
		{"has_markers", map[string]any{"has_markers": "true"}, all, "3"},
		{"AND", map[string]any{"is_missing": "cover", "AND": map[string]any{"id": map[string]any{"value": 1, "modifier": "GREATER_THAN"}}}, all, "3,5"},
		{"OR", map[string]any{"id": map[string]any{"value": 1, "modifier": "EQUALS"}, "OR": map[string]any{"id": map[string]any{"value": 5, "modifier": "EQUALS"}}}, all, "1,5"},
		{"NOT", map[string]any{"NOT": map[string]any{"is_missing": "cover"}}, all, "2,4"},
		{"paging", nil, map[string]any{"sort": "id", "per_page": 2, "page": 2}, "3,4"},
		{"page past end", nil, map[string]any{"sort": "id", "per_page": 2, "page": 9}, ""},
		{"per_page 0 counts only", nil, map[string]any{"per_page": 0}, ""},
		{"id desc", nil, map[string]any{"sort": "id", "direction": "DESC"}, "5,4,3,2,1"},
		{"updated_at asc ties by id", nil, map[string]any{"sort": "updated_at"}, "2,3,4,5,1"},
		{"created_at desc", nil, map[string]any{"sort": "created_at", "direction": "DESC"}, "5,4,3,2,1"},
		{"title", nil, map[string]any{"sort": "title", "direction": "ASC"}, "5,4,3,2,1"},
		{"q", nil, map[string]any{"q": "t2", "sort": "id"}, "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]any{}
			if tt.f != nil {
				vars["f"] = tt.f
			}
			if tt.ff != nil {
				vars["ff"] = tt.ff
			}
			d := c.ok(findScenesQ, vars)
			if got := sceneIDs(d); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	d := c.ok(findScenesQ, map[string]any{"ff": map[string]any{"per_page": 2}, "f": map[string]any{"is_missing": "cover"}})
	if dig(d, "findScenes", "count") != float64(3) {
		t.Errorf("count %v, want matches before paging", dig(d, "findScenes", "count"))
	}
}

func TestFindScenes_ResolverErrors(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddScenes(3)
	c := newClient(t, s)
	tests := []struct {
		name string
		vars map[string]any
		msg  string
	}{
		{"unknown id", map[string]any{"ids": []any{"1", "999"}}, "scene with id 999 not found"},
		{"non-numeric id", map[string]any{"ids": []any{"x"}}, "invalid syntax"},
		{"invalid sort", map[string]any{"ff": map[string]any{"sort": "rating"}}, "invalid sort: rating"},
		{"unsupported modifier", map[string]any{"f": map[string]any{"id": map[string]any{"value": 1, "modifier": "INCLUDES"}}}, "unsupported modifier"},
		{"unsupported is_missing", map[string]any{"f": map[string]any{"is_missing": "studio"}}, "invalid is_missing field: studio"},
		{"two sub-filters", map[string]any{"f": map[string]any{"AND": map[string]any{}, "OR": map[string]any{}}}, "not allowed together"},
		{"bad timestamp", map[string]any{"f": map[string]any{"updated_at": map[string]any{"value": "yesterday", "modifier": "GREATER_THAN"}}}, "invalid timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(findScenesQ, tt.vars)
			if r.Status != 200 || len(r.Errors) != 1 || !strings.Contains(str(r.Errors[0]["message"]), tt.msg) {
				t.Fatalf("status %d body %s", r.Status, r.Raw)
			}
			// findScenes is non-null, so the whole data goes null.
			if !strings.Contains(string(r.Raw), `"data":null`) {
				t.Errorf("data not null: %s", r.Raw)
			}
		})
	}
}

func TestFindScenes_IDsIgnorePagingAndFilter(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddScenes(5)
	c := newClient(t, s)
	d := c.ok(findScenesQ, map[string]any{
		"ids": []any{"4", "2", "5"},
		"ff":  map[string]any{"per_page": 1, "page": 3, "sort": "id"},
		"f":   map[string]any{"id": map[string]any{"value": 1, "modifier": "EQUALS"}},
	})
	if got := sceneIDs(d); got != "4,2,5" || dig(d, "findScenes", "count") != float64(3) {
		t.Fatalf("got %q count %v", got, dig(d, "findScenes", "count"))
	}
	d = c.ok(`{ findScenes(scene_ids: [3, 1]) { count scenes { id } } }`, nil)
	if got := sceneIDs(d); got != "3,1" {
		t.Fatalf("scene_ids: %q", got)
	}
}

func TestFindScenes_PathsAndFiles(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k&y"))
	id := s.AddScene(ScenePath("/media/a b.mp4"), SceneResources(ResourcePhash))
	s.SetNow(s.Now().Add(time.Hour))
	s.TouchScene(id)
	c := newClient(t, s)
	d := c.ok(`{ findScenes(ids: ["`+id+`"]) { count duration filesize scenes { id title paths { screenshot preview stream webp vtt sprite funscript interactive_heatmap caption }
		files { id path basename size duration fingerprints { type value } oshash: fingerprint(type: "oshash") md5: fingerprint(type: "md5") } } } }`, nil)
	sc := dig(d, "findScenes", "scenes", 0).(map[string]any)
	base := s.URL() + "/scene/" + id
	h := s.SceneOSHash(id)
	want := map[string]string{
		"screenshot": fmt.Sprintf("%s/screenshot?t=%d", base, s.SceneUpdatedAt(id).Unix()),
		"preview":    base + "/preview",
		"stream":     base + "/stream?apikey=" + url.QueryEscape("k&y"),
		"webp":       base + "/webp",
		"vtt":        s.URL() + "/scene/" + h + "_thumbs.vtt",
		"sprite":     s.URL() + "/scene/" + h + "_sprite.jpg",
	}
	for k, v := range want {
		if got := dig(sc, "paths", k); got != v {
			t.Errorf("paths.%s = %v, want %v", k, got, v)
		}
	}
	for _, k := range []string{"funscript", "interactive_heatmap", "caption"} {
		if str(dig(sc, "paths", k)) == "" {
			t.Errorf("paths.%s empty", k)
		}
	}
	if len(h) != 16 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("oshash %q", h)
	}
	f := dig(sc, "files", 0).(map[string]any)
	if f["basename"] != "a b.mp4" || f["path"] != "/media/a b.mp4" || f["oshash"] != h || f["md5"] != nil || f["id"] == id {
		t.Errorf("file %v", f)
	}
	if fps := f["fingerprints"].([]any); len(fps) != 2 || dig(fps, 1, "type") != "phash" {
		t.Errorf("fingerprints %v", fps)
	}
	if dig(d, "findScenes", "filesize") != f["size"] || dig(d, "findScenes", "duration") != f["duration"] {
		t.Errorf("totals %v", d)
	}
	// findScene by checksum (oshash) and unknown id
	d = c.ok(`{ a: findScene(checksum: "`+h+`") { id } b: findScene(id: "404") { id } }`, nil)
	if dig(d, "a", "id") != id || d["b"] != nil {
		t.Errorf("findScene %v", d)
	}
}

func TestFindSceneMarkers(t *testing.T) {
	t.Parallel()
	s := New(t)
	a, b := s.AddScene(), s.AddScene()
	t0 := s.Now()
	m1 := s.AddMarker(a, MarkerTitle("zeta"), MarkerSeconds(30, 35))
	s.Advance(time.Minute)
	m2 := s.AddMarker(b, MarkerTitle("alpha"), MarkerSeconds(5, -1))
	m3 := s.AddMarker(a, MarkerTitle("mid"), MarkerSeconds(10, -1))
	s.Advance(time.Minute)
	s.TouchMarker(m1)
	s.TouchScene(b)
	c := newClient(t, s)
	q := `query($mf: SceneMarkerFilterType, $ff: FindFilterType) { findSceneMarkers(scene_marker_filter: $mf, filter: $ff) {
		count scene_markers { id title seconds end_seconds stream preview screenshot scene { id } } } }`
	ids := func(d map[string]any) string {
		var out []string
		for _, m := range dig(d, "findSceneMarkers", "scene_markers").([]any) {
			out = append(out, str(dig(m, "id")))
		}
		return strings.Join(out, ",")
	}
	all := map[string]any{"per_page": -1, "sort": "id"}
	tests := []struct {
		name string
		mf   map[string]any
		ff   map[string]any
		want string
	}{
		{"default sort title", nil, nil, m2 + "," + m3 + "," + m1},
		{"updated_at greater", map[string]any{"updated_at": map[string]any{"value": t0.Add(time.Minute).Format(time.RFC3339), "modifier": "GREATER_THAN"}}, all, m1},
		{"created_at less", map[string]any{"created_at": map[string]any{"value": t0.Add(time.Minute).Format(time.RFC3339), "modifier": "LESS_THAN"}}, all, m1},
		{"scene filter id", map[string]any{"scene_filter": map[string]any{"id": map[string]any{"value": 1, "modifier": "EQUALS"}}}, all, m1 + "," + m3},
		{"scene_updated_at", map[string]any{"scene_updated_at": map[string]any{"value": t0.Format(time.RFC3339), "modifier": "GREATER_THAN"}}, all, m2},
		{"sort seconds desc", nil, map[string]any{"sort": "seconds", "direction": "DESC"}, m1 + "," + m3 + "," + m2},
		{"sort scene_id", nil, map[string]any{"sort": "scene_id"}, m1 + "," + m3 + "," + m2},
		{"sort updated_at", nil, map[string]any{"sort": "updated_at"}, m2 + "," + m3 + "," + m1},
		{"paging", nil, map[string]any{"sort": "id", "per_page": 1, "page": 2}, m2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]any{}
			if tt.mf != nil {
				vars["mf"] = tt.mf
			}
			if tt.ff != nil {
				vars["ff"] = tt.ff
			}
			if got := ids(c.ok(q, vars)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	d := c.ok(q, map[string]any{"ff": all})
	if dig(d, "findSceneMarkers", "count") != float64(3) {
		t.Fatalf("count %v", dig(d, "findSceneMarkers", "count"))
	}
	mk := dig(d, "findSceneMarkers", "scene_markers", 0).(map[string]any)
	base := fmt.Sprintf("%s/scene/%s/scene_marker/%s/", s.URL(), a, m1)
	if mk["stream"] != base+"stream" || mk["preview"] != base+"preview" || mk["screenshot"] != base+"screenshot" ||
		mk["seconds"] != float64(30) || mk["end_seconds"] != float64(35) || dig(mk, "scene", "id") != a {
		t.Errorf("marker %v", mk)
	}
	if r := c.do(q, map[string]any{"ff": map[string]any{"sort": "nope"}}); len(r.Errors) != 1 {
		t.Errorf("invalid sort accepted: %s", r.Raw)
	}
	// Scene.scene_markers is ordered by seconds.
	d = c.ok(`{ findScene(id: "`+a+`") { scene_markers { id } } }`, nil)
	if dig(d, "findScene", "scene_markers", 0, "id") != m3 {
		t.Errorf("scene_markers order %v", d)
	}
	s.DeleteMarker(m3)
	s.DeleteScene(b)
	d = c.ok(q, map[string]any{"ff": all})
	if ids(d) != m1 {
		t.Errorf("after deletes %q", ids(d))
	}
}

func TestLargeLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("large library")
	}
	t.Parallel()
	s := New(t)
	ids := s.AddScenes(100_000)
	for i := range 200_000 {
		s.AddMarker(ids[i%len(ids)])
	}
	c := newClient(t, s)
	start := time.Now()
	d := c.ok(`{ findScenes(filter: {per_page: -1, sort: "id"}) { count scenes { id updated_at } } }`, nil)
	if dig(d, "findScenes", "count") != float64(100_000) || len(dig(d, "findScenes", "scenes").([]any)) != 100_000 {
		t.Fatal("wrong count")
	}
	d = c.ok(`{ findSceneMarkers(filter: {per_page: 1000, page: 200, sort: "updated_at"}) { count scene_markers { id } } }`, nil)
	if dig(d, "findSceneMarkers", "count") != float64(200_000) {
		t.Fatal("wrong marker count")
	}
	for page := 1; page <= 20; page++ {
		c.ok(`query($p: Int) { findScenes(filter: {per_page: 1000, page: $p, sort: "updated_at"}, scene_filter: {updated_at: {value: "2000-01-01T00:00:00Z", modifier: GREATER_THAN}}) { count scenes { id } } }`, map[string]any{"p": page})
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("large-library queries took %v", el)
	}
}

func BenchmarkFindScenesPage(b *testing.B) {
	s, closeFn := NewServer()
	defer closeFn()
	s.AddScenes(100_000)
	c := newClient(b, s)
	b.ResetTimer()
	for b.Loop() {
		c.ok(`{ findScenes(filter: {per_page: 1000, page: 50, sort: "updated_at"}) { count scenes { id updated_at paths { preview } } } }`, nil)
	}
}

func TestFloatsRenderedLikeGqlgen(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.AddScene()
	c := newClient(t, s)
	r := c.do(`{ findScenes { filesize duration } }`, nil)
	if want := `{"data":{"findScenes":{"filesize":1.00000001e+08,"duration":600}}}`; string(r.Raw) != want {
		t.Fatalf("got %s, want %s", r.Raw, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := New(t, WithScenesPerTick(1))
	ids := s.AddScenes(50)
	c := newClient(t, s)
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 25 {
				id := ids[(w*25+i)%len(ids)]
				switch i % 4 {
				case 0:
					c.ok(`{ findScene(id: "`+id+`") { id updated_at paths { preview } scene_markers { id } } }`, nil)
				case 1:
					c.get(http.MethodGet, s.URL()+"/scene/"+id+"/preview", nil)
				case 2:
					c.findJob(c.generate(map[string]any{"previews": true, "sceneIDs": []any{id}}))
				case 3:
					s.TouchScene(id)
					s.AddMarker(id)
					_ = s.Calls()
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	s.DrainJobs()
	for w := range 8 {
		for i := 2; i < 25; i += 4 {
			if id := ids[(w*25+i)%len(ids)]; !s.HasResource(id, ResourcePreview) {
				t.Fatalf("scene %s has no preview", id)
			}
		}
	}
	if n := len(s.GenerateInputs()); n != 8*6 {
		t.Fatalf("generate calls %d", n)
	}
}

func BenchmarkFileRequest(b *testing.B) {
	s, closeFn := NewServer()
	defer closeFn()
	id := s.AddScene(SceneResources(ResourcePreview))
	c := newClient(b, s)
	url := s.URL() + "/scene/" + id + "/preview"
	b.ResetTimer()
	for b.Loop() {
		c.get(http.MethodGet, url, map[string]string{"Range": "bytes=0-0"})
	}
}
