package stash

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SceneQuery selects one page of scenes, keyset-paged by id so that edits
// made while paging never shift a page: ask again with AfterID set to the
// last id seen.
type SceneQuery struct {
	AfterID      int64  // only ids greater than this
	UpToID       int64  // only ids up to this one; 0 = no upper bound
	UpdatedAfter string // strictly after this Stash timestamp; "" = any
	IsMissing    string // "cover", "phash", ...; "" = no such filter
	PerPage      int
}

// ScenePage is one page and the number of scenes matching in all.
type ScenePage struct {
	Count  int
	Scenes []Scene
	// Date is Stash's clock when it answered (its Date header): what its
	// updated_at values are measured by. Zero when the answer had none.
	Date time.Time
}

const (
	qScenes = `query FindScenes($scene_filter: SceneFilterType, $filter: FindFilterType) {
  findScenes(scene_filter: $scene_filter, filter: $filter) {
    count scenes { id created_at updated_at paths { preview webp vtt sprite } } } }`
	qSceneIDs = `query FindSceneIDs($scene_filter: SceneFilterType, $filter: FindFilterType) {
  findScenes(scene_filter: $scene_filter, filter: $filter) { count scenes { id } } }`
	qMarkers = `query FindSceneMarkers($scene_marker_filter: SceneMarkerFilterType, $filter: FindFilterType) {
  findSceneMarkers(scene_marker_filter: $scene_marker_filter, filter: $filter) {
    count scene_markers { id updated_at scene { id } stream preview screenshot } } }`
)

// Scenes returns one page of scenes in id order.
func (c *Client) Scenes(ctx context.Context, q SceneQuery) (ScenePage, error) {
	return c.scenes(ctx, qScenes, q)
}

// SceneIDs is Scenes without the paths, for filters such as is_missing.
func (c *Client) SceneIDs(ctx context.Context, q SceneQuery) (ScenePage, error) {
	return c.scenes(ctx, qSceneIDs, q)
}

func (c *Client) scenes(ctx context.Context, query string, q SceneQuery) (ScenePage, error) {
	if q.PerPage <= 0 {
		q.PerPage = 1000
	}
	filter := map[string]any{"id": map[string]any{"value": q.AfterID, "modifier": "GREATER_THAN"}}
	if q.UpToID > 0 {
		filter["AND"] = map[string]any{"id": map[string]any{"value": q.UpToID + 1, "modifier": "LESS_THAN"}}
	}
	if q.UpdatedAfter != "" {
		filter["updated_at"] = map[string]any{"value": q.UpdatedAfter, "modifier": "GREATER_THAN"}
	}
	if q.IsMissing != "" {
		filter["is_missing"] = q.IsMissing
	}
	vars := map[string]any{
		"scene_filter": filter,
		"filter":       map[string]any{"page": 1, "per_page": q.PerPage, "sort": "id", "direction": "ASC"},
	}
	var res *struct {
		Count  int     `json:"count"`
		Scenes []Scene `json:"scenes"`
	}
	var date time.Time
	if err := c.run(withDate(ctx, &date), "findScenes", query, vars, map[string]any{"findScenes": &res}); err != nil {
		return ScenePage{}, err
	}
	if res == nil {
		return ScenePage{}, c.fail(&Error{Op: "findScenes", URL: c.endpoint, Kind: KindProtocol, Status: http.StatusOK, Msg: "findScenes is null"})
	}
	return ScenePage{Count: res.Count, Scenes: res.Scenes, Date: date}, nil
}

// MarkerQuery selects one page of markers in id order. Stash has no id
// filter for markers, so these pages are numbered; a caller that must not
// miss a marker reads a range of scenes small enough for one page.
type MarkerQuery struct {
	UpdatedAfter string // strictly after this Stash timestamp; "" = any
	// SceneIDFrom and SceneIDTo select the markers of the scenes with ids
	// from SceneIDFrom to SceneIDTo, both included; SceneIDTo 0 means no
	// upper bound.
	SceneIDFrom, SceneIDTo int64
	Page                   int // 1-based
	PerPage                int
}

// MarkerPage is one page and the number of markers matching in all.
type MarkerPage struct {
	Count   int
	Markers []Marker
	// Date is Stash's clock when it answered, as in ScenePage.
	Date time.Time
}

// Markers returns one page of scene markers.
func (c *Client) Markers(ctx context.Context, q MarkerQuery) (MarkerPage, error) {
	if q.PerPage <= 0 {
		q.PerPage = 1000
	}
	if q.Page <= 0 {
		q.Page = 1
	}
	filter := map[string]any{}
	if q.UpdatedAfter != "" {
		filter["updated_at"] = map[string]any{"value": q.UpdatedAfter, "modifier": "GREATER_THAN"}
	}
	if q.SceneIDFrom > 0 && q.SceneIDTo > 0 {
		// An inverted range selects no scene, as BETWEEN does; it must not
		// fall through to every marker.
		filter["scene_filter"] = map[string]any{"id": map[string]any{"value": q.SceneIDFrom, "value2": q.SceneIDTo, "modifier": "BETWEEN"}}
	} else if q.SceneIDFrom > 1 {
		filter["scene_filter"] = map[string]any{"id": map[string]any{"value": q.SceneIDFrom - 1, "modifier": "GREATER_THAN"}}
	}
	vars := map[string]any{
		"scene_marker_filter": filter,
		"filter":              map[string]any{"page": q.Page, "per_page": q.PerPage, "sort": "id", "direction": "ASC"},
	}
	var res *struct {
		Count   int      `json:"count"`
		Markers []Marker `json:"scene_markers"`
	}
	var date time.Time
	if err := c.run(withDate(ctx, &date), "findSceneMarkers", qMarkers, vars, map[string]any{"findSceneMarkers": &res}); err != nil {
		return MarkerPage{}, err
	}
	if res == nil {
		return MarkerPage{}, c.fail(&Error{Op: "findSceneMarkers", URL: c.endpoint, Kind: KindProtocol, Status: http.StatusOK, Msg: "findSceneMarkers is null"})
	}
	return MarkerPage{Count: res.Count, Markers: res.Markers, Date: date}, nil
}

// knownChunk bounds the aliases per request in KnownScenes.
const knownChunk = 250

// KnownScenes returns the ids that Stash still has, each with the paths of
// its video files (what Stash's log names when generating one fails). It
// asks findScene (null for an unknown id) under one alias per id, because
// findScenes(ids:) fails as a whole when a single id is unknown. The answer
// is read by alias, so the map is keyed by the ids as given, and an alias
// missing from the answer is an error rather than a deleted scene.
func (c *Client) KnownScenes(ctx context.Context, ids []string) (map[string][]string, error) {
	known := make(map[string][]string, len(ids))
	for start := 0; start < len(ids); start += knownChunk {
		chunk := ids[start:min(start+knownChunk, len(ids))]
		var q strings.Builder
		q.WriteString("query KnownScenes(")
		vars := make(map[string]any, len(chunk))
		found := make([]*struct {
			ID    string `json:"id"`
			Files []struct {
				Path string `json:"path"`
			} `json:"files"`
		}, len(chunk))
		fields := make(map[string]any, len(chunk))
		for i, id := range chunk {
			if _, err := strconv.ParseUint(id, 10, 63); err != nil {
				continue // never a Stash id; leave it unknown
			}
			if len(vars) > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$i%d: ID", i)
			vars[fmt.Sprintf("i%d", i)] = id
			fields[fmt.Sprintf("s%d", i)] = &found[i]
		}
		if len(vars) == 0 {
			continue
		}
		q.WriteString(") {")
		for i := range chunk {
			if _, ok := vars[fmt.Sprintf("i%d", i)]; ok {
				fmt.Fprintf(&q, " s%d: findScene(id: $i%d) { id files { path } }", i, i)
			}
		}
		q.WriteString(" }")
		if err := c.run(ctx, "findScene", q.String(), vars, fields); err != nil {
			return nil, err
		}
		for i, s := range found {
			if s != nil {
				paths := make([]string, 0, len(s.Files))
				for _, f := range s.Files {
					paths = append(paths, f.Path)
				}
				known[chunk[i]] = paths
			}
		}
	}
	return known, nil
}
