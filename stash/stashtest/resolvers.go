package stashtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
)

// resolveRoot answers one top-level field. Errors mirror Stash's resolvers
// (strconv messages for malformed ids, "scene with id N not found").
func (e *executor) resolveRoot(f *ast.Field, args map[string]any) (any, error) {
	s := e.s
	switch f.Name {
	case "findScene":
		return e.findScene(args)
	case "findScenes":
		return e.findScenes(args)
	case "findSceneMarkers":
		return e.findSceneMarkers(args)
	case "configuration":
		var gen any
		if s.generateDefaults != nil {
			gen = s.generateDefaults
		}
		return map[string]any{"defaults": map[string]any{
			"generate": gen, "deleteFile": false, "deleteGenerated": true,
		}}, nil
	case "jobQueue":
		if len(s.jq.queue) == 0 {
			return nil, nil // Stash answers null, not [], for an empty queue
		}
		out := make([]any, len(s.jq.queue))
		for i, j := range s.jq.queue {
			out[i] = jobValue(j)
		}
		return out, nil
	case "findJob":
		id, err := strconv.Atoi(idString(asMap(args["input"])["id"]))
		if err != nil {
			return nil, err
		}
		if q := s.jq.queue; len(q) > 0 && q[0].id == id && s.autoTick <= 0 {
			s.tick()
		}
		if j := s.jq.find(id); j != nil {
			return jobValue(j), nil
		}
		return nil, nil
	case "version":
		return map[string]any{"version": s.version[0], "hash": s.version[1], "build_time": s.version[2]}, nil
	case "metadataGenerate":
		in := normalize(args["input"])
		s.log.generates = append(s.log.generates, in)
		return strconv.Itoa(s.enqueue(kindGenerate, "Generating...", in).id), nil
	case "metadataScan":
		in := normalize(args["input"])
		s.log.scans = append(s.log.scans, in)
		return strconv.Itoa(s.enqueue(kindScan, "Scanning...", in).id), nil
	case "stopJob":
		raw := idString(args["job_id"])
		id, err := strconv.Atoi(raw)
		if err != nil {
			return nil, err
		}
		s.log.stops = append(s.log.stops, StopCall{JobID: raw, At: time.Now()})
		s.stop(id)
		return true, nil
	case "stopAllJobs":
		s.log.stops = append(s.log.stops, StopCall{All: true, At: time.Now()})
		for _, j := range slices.Clone(s.jq.queue) {
			s.stop(j.id)
		}
		return true, nil
	}
	return nil, fmt.Errorf("stashtest: field %s has no resolver", f.Name)
}

// normalize turns an argument into what JSON would decode, so recorded
// inputs compare the same whether sent inline or as variables.
func normalize(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (e *executor) findScene(args map[string]any) (any, error) {
	s := e.s
	if v, ok := args["id"]; ok && v != nil {
		id, err := strconv.Atoi(idString(v))
		if err != nil {
			return nil, err
		}
		if sc := s.lib.sceneByID[id]; sc != nil {
			return sceneObj{sc}, nil
		}
		return nil, nil
	}
	if c, ok := args["checksum"].(string); ok {
		if sc := s.lib.sceneByOSH[c]; sc != nil {
			return sceneObj{sc}, nil
		}
	}
	return nil, nil
}

// findScenes follows Stash: given ids, it returns exactly those scenes (in
// the order asked) and ignores filter and paging, failing the whole query
// on an unknown id; otherwise it filters, sorts and pages the library.
func (e *executor) findScenes(args map[string]any) (any, error) {
	s := e.s
	var ids []int
	if list, ok := args["scene_ids"].([]any); ok {
		for _, v := range list {
			n, _ := toInt(v)
			ids = append(ids, n)
		}
	}
	if list, ok := args["ids"].([]any); ok {
		for _, v := range list {
			n, err := strconv.Atoi(idString(v))
			if err != nil {
				return nil, err
			}
			ids = append(ids, n)
		}
	}
	var page []*scene
	var count int
	var duration, size float64
	if len(ids) > 0 {
		for _, id := range ids {
			sc := s.lib.sceneByID[id]
			if sc == nil {
				return nil, fmt.Errorf("scene with id %d not found", id)
			}
			page = append(page, sc)
			duration += sc.duration
			size += float64(sc.size)
		}
		count = len(page)
	} else {
		pred, err := s.sceneFilter(args["scene_filter"])
		if err != nil {
			return nil, err
		}
		ff := parseFindFilter(args["filter"], "title")
		var matched []*scene
		for _, sc := range s.lib.scenes {
			if pred(sc) && matchesQ(ff.q, sc.title, sc.path) {
				matched = append(matched, sc)
				duration += sc.duration
				size += float64(sc.size)
			}
		}
		if err := sortScenes(matched, ff.sort, ff.desc); err != nil {
			return nil, err
		}
		count = len(matched)
		lo, hi := ff.window(count)
		page = matched[lo:hi]
	}
	list := make([]any, len(page))
	for i, sc := range page {
		list[i] = sceneObj{sc}
	}
	return map[string]any{"count": count, "duration": duration, "filesize": size, "scenes": list}, nil
}

func (e *executor) findSceneMarkers(args map[string]any) (any, error) {
	s := e.s
	pred, err := s.markerFilter(args["scene_marker_filter"])
	if err != nil {
		return nil, err
	}
	ff := parseFindFilter(args["filter"], "title")
	var matched []*marker
	for _, m := range s.lib.markers {
		if pred(m) && matchesQ(ff.q, m.title) {
			matched = append(matched, m)
		}
	}
	if err := sortMarkers(matched, ff.sort, ff.desc); err != nil {
		return nil, err
	}
	lo, hi := ff.window(len(matched))
	list := make([]any, 0, hi-lo)
	for _, m := range matched[lo:hi] {
		list = append(list, markerObj{m})
	}
	return map[string]any{"count": len(matched), "scene_markers": list}, nil
}

type sceneObj struct{ sc *scene }

func (o sceneObj) get(e *executor, name string, args map[string]any) any {
	sc := o.sc
	switch name {
	case "id":
		return strconv.Itoa(sc.id)
	case "title":
		if sc.title == "" {
			return nil
		}
		return sc.title
	case "created_at":
		return sc.createdAt
	case "updated_at":
		return sc.updatedAt
	case "paths":
		return e.scenePaths(sc)
	case "scene_markers":
		ms := slices.Clone(sc.markers)
		slices.SortStableFunc(ms, func(a, b *marker) int {
			switch {
			case a.seconds < b.seconds:
				return -1
			case a.seconds > b.seconds:
				return 1
			}
			return 0
		})
		out := make([]any, len(ms))
		for i, m := range ms {
			out[i] = markerObj{m}
		}
		return out
	case "files":
		return []any{fileObj{sc}}
	}
	return nil
}

// scenePaths builds URLs from the address the client used, as Stash does.
// Every path is given whether or not the file exists; only stream carries
// the API key.
func (e *executor) scenePaths(sc *scene) map[string]any {
	base := e.base + "/scene/" + strconv.Itoa(sc.id)
	stream := base + "/stream"
	if e.s.apiKey != "" {
		stream += "?apikey=" + url.QueryEscape(e.s.apiKey)
	}
	return map[string]any{
		"screenshot":          base + "/screenshot?t=" + strconv.FormatInt(sc.updatedAt.Unix(), 10),
		"preview":             base + "/preview",
		"stream":              stream,
		"webp":                base + "/webp",
		"vtt":                 e.base + "/scene/" + sc.oshash + "_thumbs.vtt",
		"sprite":              e.base + "/scene/" + sc.oshash + "_sprite.jpg",
		"funscript":           base + "/funscript",
		"interactive_heatmap": base + "/interactive_heatmap",
		"caption":             base + "/caption",
	}
}

type markerObj struct{ m *marker }

func (o markerObj) get(e *executor, name string, _ map[string]any) any {
	m := o.m
	base := func(action string) string {
		return fmt.Sprintf("%s/scene/%d/scene_marker/%d/%s", e.base, m.scene.id, m.id, action)
	}
	switch name {
	case "id":
		return strconv.Itoa(m.id)
	case "scene":
		return sceneObj{m.scene}
	case "title":
		return m.title
	case "seconds":
		return m.seconds
	case "end_seconds":
		if m.endSeconds == nil {
			return nil
		}
		return *m.endSeconds
	case "created_at":
		return m.createdAt
	case "updated_at":
		return m.updatedAt
	case "stream", "preview", "screenshot":
		return base(name)
	}
	return nil
}

type fileObj struct{ sc *scene }

func (o fileObj) fingerprints() map[string]string {
	fp := map[string]string{"oshash": o.sc.oshash}
	if o.sc.has(ResourcePhash) {
		fp["phash"] = oshash(o.sc.id + 1<<40)
	}
	return fp
}

func (o fileObj) get(_ *executor, name string, args map[string]any) any {
	sc := o.sc
	switch name {
	case "id":
		return strconv.Itoa(sc.fileID)
	case "path":
		return sc.path
	case "basename":
		return path.Base(sc.path)
	case "size":
		return sc.size
	case "duration":
		return sc.duration
	case "fingerprints":
		fp := o.fingerprints()
		out := []any{map[string]any{"type": "oshash", "value": fp["oshash"]}}
		if v, ok := fp["phash"]; ok {
			out = append(out, map[string]any{"type": "phash", "value": v})
		}
		return out
	case "fingerprint":
		t, _ := args["type"].(string)
		if v, ok := o.fingerprints()[t]; ok {
			return v
		}
		return nil
	}
	return nil
}
