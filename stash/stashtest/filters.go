package stashtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Argument values arrive as gqlparser produces them: literals as int64,
// float64, string, bool; variables as JSON decodes them. These helpers
// accept both.

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

// idString renders a GraphQL ID value (a string, or an int in JSON or a
// literal) as Stash's resolvers see it.
func idString(v any) string {
	switch n := v.(type) {
	case string:
		return n
	case int64:
		return strconv.FormatInt(n, 10)
	case int:
		return strconv.Itoa(n)
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case json.Number:
		return n.String()
	}
	return fmt.Sprint(v)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// findFilter is FindFilterType with Stash's defaults applied.
type findFilter struct {
	q       string
	page    int
	perPage int
	all     bool
	sort    string
	desc    bool
}

func parseFindFilter(v any, defaultSort string) findFilter {
	m := asMap(v)
	ff := findFilter{page: 1, perPage: 25, sort: defaultSort}
	if q, ok := m["q"].(string); ok {
		ff.q = q
	}
	if p, ok := toInt(m["page"]); ok && p >= 1 {
		ff.page = p
	}
	if pp, ok := toInt(m["per_page"]); ok {
		if pp < 0 {
			ff.all = true
		} else {
			ff.perPage = pp
		}
	}
	if s, ok := m["sort"].(string); ok {
		ff.sort = s
	}
	if d, ok := m["direction"].(string); ok && d == "DESC" {
		ff.desc = true
	}
	return ff
}

// window returns the [lo, hi) slice bounds of the requested page.
func (ff findFilter) window(n int) (int, int) {
	if ff.all {
		return 0, n
	}
	lo := min((ff.page-1)*ff.perPage, n)
	return lo, min(lo+ff.perPage, n)
}

// parseTimestamp accepts what Stash's timestamp criteria are given in
// practice: RFC3339, or "2006-01-02 15:04:05" / a bare date in Stash's zone.
func (s *Server) parseTimestamp(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.Truncate(time.Second), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, s.loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", v)
}

// timeCriterion compiles a TimestampCriterionInput. As in Stash, BETWEEN
// without value2 means "until a day from now".
func (s *Server) timeCriterion(name string, v any) (func(time.Time) bool, error) {
	m := asMap(v)
	mod, _ := m["modifier"].(string)
	val, _ := m["value"].(string)
	lo, err := s.parseTimestamp(val)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hi := s.now.Add(24 * time.Hour)
	if v2, ok := m["value2"].(string); ok {
		if hi, err = s.parseTimestamp(v2); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	switch mod {
	case "EQUALS":
		return func(t time.Time) bool { return t.Equal(lo) }, nil
	case "NOT_EQUALS":
		return func(t time.Time) bool { return !t.Equal(lo) }, nil
	case "GREATER_THAN":
		return func(t time.Time) bool { return t.After(lo) }, nil
	case "LESS_THAN":
		return func(t time.Time) bool { return t.Before(lo) }, nil
	case "BETWEEN":
		return func(t time.Time) bool { return !t.Before(lo) && !t.After(hi) }, nil
	case "NOT_BETWEEN":
		return func(t time.Time) bool { return t.Before(lo) || t.After(hi) }, nil
	case "IS_NULL":
		return func(time.Time) bool { return false }, nil
	case "NOT_NULL":
		return func(time.Time) bool { return true }, nil
	}
	return nil, fmt.Errorf("%s: unsupported modifier %s", name, mod)
}

// intCriterion compiles an IntCriterionInput; value2 defaults to 0 as in
// Stash.
func intCriterion(name string, v any) (func(int) bool, error) {
	m := asMap(v)
	mod, _ := m["modifier"].(string)
	lo, _ := toInt(m["value"])
	hi, _ := toInt(m["value2"])
	switch mod {
	case "EQUALS":
		return func(x int) bool { return x == lo }, nil
	case "NOT_EQUALS":
		return func(x int) bool { return x != lo }, nil
	case "GREATER_THAN":
		return func(x int) bool { return x > lo }, nil
	case "LESS_THAN":
		return func(x int) bool { return x < lo }, nil
	case "BETWEEN":
		return func(x int) bool { return x >= lo && x <= hi }, nil
	case "NOT_BETWEEN":
		return func(x int) bool { return x < lo || x > hi }, nil
	case "IS_NULL":
		return func(int) bool { return false }, nil
	case "NOT_NULL":
		return func(int) bool { return true }, nil
	}
	return nil, fmt.Errorf("%s: unsupported modifier %s", name, mod)
}

type scenePred func(*scene) bool

// sceneFilter compiles a SceneFilterType. Own criteria are ANDed; a sub
// filter combines with them as Stash's filter builder does, and only one of
// AND, OR, NOT may be given.
func (s *Server) sceneFilter(v any) (scenePred, error) {
	m := asMap(v)
	if m == nil {
		return func(*scene) bool { return true }, nil
	}
	var preds []scenePred
	var sub struct {
		kind string
		pred scenePred
	}
	for _, key := range slices.Sorted(maps.Keys(m)) {
		val := m[key]
		if val == nil {
			continue
		}
		switch key {
		case "AND", "OR", "NOT":
			if sub.kind != "" {
				return nil, fmt.Errorf("%s and %s sub-filters are not allowed together", sub.kind, key)
			}
			p, err := s.sceneFilter(val)
			if err != nil {
				return nil, err
			}
			sub.kind, sub.pred = key, p
		case "id":
			c, err := intCriterion(key, val)
			if err != nil {
				return nil, err
			}
			preds = append(preds, func(sc *scene) bool { return c(sc.id) })
		case "created_at", "updated_at":
			c, err := s.timeCriterion(key, val)
			if err != nil {
				return nil, err
			}
			if key == "created_at" {
				preds = append(preds, func(sc *scene) bool { return c(sc.createdAt) })
			} else {
				preds = append(preds, func(sc *scene) bool { return c(sc.updatedAt) })
			}
		case "is_missing":
			var r Resource
			switch val {
			case "cover":
				r = ResourceCover
			case "phash":
				r = ResourcePhash
			default:
				return nil, fmt.Errorf("invalid is_missing field: %v", val)
			}
			preds = append(preds, func(sc *scene) bool { return !sc.has(r) })
		case "has_markers":
			want := val == "true"
			preds = append(preds, func(sc *scene) bool { return (len(sc.markers) > 0) == want })
		default:
			return nil, fmt.Errorf("stashtest: scene_filter.%s is not supported by the fake", key)
		}
	}
	own := func(sc *scene) bool {
		for _, p := range preds {
			if !p(sc) {
				return false
			}
		}
		return true
	}
	switch sub.kind {
	case "AND":
		return func(sc *scene) bool { return own(sc) && sub.pred(sc) }, nil
	case "OR":
		if len(preds) == 0 {
			return sub.pred, nil
		}
		return func(sc *scene) bool { return own(sc) || sub.pred(sc) }, nil
	case "NOT":
		return func(sc *scene) bool { return own(sc) && !sub.pred(sc) }, nil
	}
	return own, nil
}

// matchesQ is Stash's free-text search, reduced to title and path.
func matchesQ(q string, fields ...string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	words := strings.Fields(q)
	if t := strings.Trim(q, `"`); t != q {
		words = []string{t}
	}
	for _, f := range fields {
		f = strings.ToLower(f)
		for _, w := range words {
			if strings.Contains(f, w) {
				return true
			}
		}
	}
	return false
}

func sceneSortTitle(sc *scene) string {
	if sc.title != "" {
		return strings.ToLower(sc.title)
	}
	return strings.ToLower(path.Base(sc.path))
}

// sortScenes orders scenes in place; ties fall back to ascending id, which
// is what SQLite's row order gives Stash.
func sortScenes(list []*scene, key string, desc bool) error {
	var c func(a, b *scene) int
	switch key {
	case "id":
		c = func(a, b *scene) int { return cmp.Compare(a.id, b.id) }
	case "created_at":
		c = func(a, b *scene) int { return a.createdAt.Compare(b.createdAt) }
	case "updated_at":
		c = func(a, b *scene) int { return a.updatedAt.Compare(b.updatedAt) }
	case "title":
		c = func(a, b *scene) int { return strings.Compare(sceneSortTitle(a), sceneSortTitle(b)) }
	default:
		return fmt.Errorf("invalid sort: %s", key)
	}
	if key == "id" && !desc {
		return nil // the library is kept in id order
	}
	slices.SortStableFunc(list, func(a, b *scene) int {
		r := c(a, b)
		if desc {
			r = -r
		}
		if r == 0 {
			r = cmp.Compare(a.id, b.id)
		}
		return r
	})
	return nil
}

type markerPred func(*marker) bool

// markerFilter compiles a SceneMarkerFilterType.
func (s *Server) markerFilter(v any) (markerPred, error) {
	m := asMap(v)
	var preds []markerPred
	for _, key := range slices.Sorted(maps.Keys(m)) {
		val := m[key]
		if val == nil {
			continue
		}
		switch key {
		case "created_at", "updated_at", "scene_created_at", "scene_updated_at":
			c, err := s.timeCriterion(key, val)
			if err != nil {
				return nil, err
			}
			get := map[string]func(*marker) time.Time{
				"created_at":       func(mk *marker) time.Time { return mk.createdAt },
				"updated_at":       func(mk *marker) time.Time { return mk.updatedAt },
				"scene_created_at": func(mk *marker) time.Time { return mk.scene.createdAt },
				"scene_updated_at": func(mk *marker) time.Time { return mk.scene.updatedAt },
			}[key]
			preds = append(preds, func(mk *marker) bool { return c(get(mk)) })
		case "scene_filter":
			p, err := s.sceneFilter(val)
			if err != nil {
				return nil, err
			}
			preds = append(preds, func(mk *marker) bool { return p(mk.scene) })
		default:
			return nil, fmt.Errorf("stashtest: scene_marker_filter.%s is not supported by the fake", key)
		}
	}
	return func(mk *marker) bool {
		for _, p := range preds {
			if !p(mk) {
				return false
			}
		}
		return true
	}, nil
}

func sortMarkers(list []*marker, key string, desc bool) error {
	var c func(a, b *marker) int
	switch key {
	case "id":
		c = func(a, b *marker) int { return cmp.Compare(a.id, b.id) }
	case "created_at":
		c = func(a, b *marker) int { return a.createdAt.Compare(b.createdAt) }
	case "updated_at":
		c = func(a, b *marker) int { return a.updatedAt.Compare(b.updatedAt) }
	case "scene_id":
		c = func(a, b *marker) int { return cmp.Compare(a.scene.id, b.scene.id) }
	case "seconds":
		c = func(a, b *marker) int { return cmp.Compare(a.seconds, b.seconds) }
	case "title":
		c = func(a, b *marker) int { return strings.Compare(strings.ToLower(a.title), strings.ToLower(b.title)) }
	default:
		return fmt.Errorf("invalid sort: %s", key)
	}
	if key == "id" && !desc {
		return nil
	}
	slices.SortStableFunc(list, func(a, b *marker) int {
		r := c(a, b)
		if desc {
			r = -r
		}
		if r == 0 {
			r = cmp.Compare(a.id, b.id)
		}
		return r
	})
	return nil
}
