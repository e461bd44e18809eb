package stashtest

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Resource is a generated file Stash may or may not have for a scene or a
// marker. Which ones exist decides what file routes answer and what a
// generate job still has to make.
type Resource string

// Scene resources.
const (
	ResourceCover   Resource = "cover"   // screenshot route serves a JPEG
	ResourcePhash   Resource = "phash"   // the file gets a phash fingerprint
	ResourcePreview Resource = "preview" // mp4 preview
	ResourceWebP    Resource = "webp"    // animated image preview
	ResourceSprite  Resource = "sprite"  // <oshash>_sprite.jpg
	ResourceVTT     Resource = "vtt"     // <oshash>_thumbs.vtt
)

// Marker resources.
const (
	ResourceMarkerStream     Resource = "marker_stream"     // mp4 clip
	ResourceMarkerPreview    Resource = "marker_preview"    // webp
	ResourceMarkerScreenshot Resource = "marker_screenshot" // jpg
)

var resourceBits = map[Resource]uint16{
	ResourceCover:            1 << 0,
	ResourcePhash:            1 << 1,
	ResourcePreview:          1 << 2,
	ResourceWebP:             1 << 3,
	ResourceSprite:           1 << 4,
	ResourceVTT:              1 << 5,
	ResourceMarkerStream:     1 << 8,
	ResourceMarkerPreview:    1 << 9,
	ResourceMarkerScreenshot: 1 << 10,
}

const markerBits = 0xff00

func bitFor(r Resource, marker bool) uint16 {
	b, ok := resourceBits[r]
	if !ok || (b&markerBits != 0) != marker {
		kind := "scene"
		if marker {
			kind = "marker"
		}
		panic(fmt.Sprintf("stashtest: %q is not a %s resource", r, kind))
	}
	return b
}

type scene struct {
	id        int
	title     string
	path      string
	oshash    string
	fileID    int
	size      int64
	duration  float64
	createdAt time.Time
	updatedAt time.Time
	res       uint16
	fail      uint16
	markers   []*marker // ascending id
}

func (sc *scene) has(r Resource) bool { return sc.res&resourceBits[r] != 0 }

type marker struct {
	id         int
	scene      *scene
	title      string
	seconds    float64
	endSeconds *float64
	createdAt  time.Time
	updatedAt  time.Time
	res        uint16
	fail       uint16
}

// library holds scenes and markers sorted by id, with maps for lookups, so
// paging 100,000 scenes stays linear.
type library struct {
	scenes     []*scene
	sceneByID  map[int]*scene
	sceneByOSH map[string]*scene
	markers    []*marker
	markerByID map[int]*marker
	nextScene  int
	nextMarker int
	nextFile   int
}

func (l *library) init() {
	l.sceneByID = map[int]*scene{}
	l.sceneByOSH = map[string]*scene{}
	l.markerByID = map[int]*marker{}
	l.nextScene = 1
	l.nextMarker = 1
	// File ids come from their own counter, offset so a client mixing up
	// scene and file ids fails.
	l.nextFile = 1001
}

// oshash derives a 16-hex-digit hash from the id with splitmix64, a
// bijection, so hashes are unique and stable across runs.
func oshash(id int) string {
	z := uint64(id) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return fmt.Sprintf("%016x", z)
}

// SceneOption sets a field of a scene made by AddScene.
type SceneOption func(*scene)

// SceneTitle sets the title (default "Scene <id>").
func SceneTitle(title string) SceneOption { return func(sc *scene) { sc.title = title } }

// ScenePath sets the video file's path (default /data/videos/scene<id>.mp4).
func ScenePath(path string) SceneOption { return func(sc *scene) { sc.path = path } }

// SceneDuration sets the video duration in seconds (default 600).
func SceneDuration(seconds float64) SceneOption {
	return func(sc *scene) { sc.duration = seconds }
}

// SceneResources marks generated files as already present.
func SceneResources(rs ...Resource) SceneOption {
	return func(sc *scene) {
		for _, r := range rs {
			sc.res |= bitFor(r, false)
		}
	}
}

// AddScene adds a scene created now and returns its id.
func (s *Server) AddScene(opts ...SceneOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.Itoa(s.addSceneLocked(opts).id)
}

// AddScenes adds n plain scenes and returns their ids in order.
func (s *Server) AddScenes(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(s.addSceneLocked(nil).id)
	}
	return ids
}

func (s *Server) addSceneLocked(opts []SceneOption) *scene {
	l := &s.lib
	id := l.nextScene
	l.nextScene++
	sc := &scene{
		id:        id,
		title:     "Scene " + strconv.Itoa(id),
		path:      fmt.Sprintf("/data/videos/scene%d.mp4", id),
		oshash:    oshash(id),
		fileID:    l.nextFile,
		size:      int64(100_000_000 + id),
		duration:  600,
		createdAt: s.now,
		updatedAt: s.now,
	}
	l.nextFile++
	for _, o := range opts {
		o(sc)
	}
	l.scenes = append(l.scenes, sc)
	l.sceneByID[id] = sc
	l.sceneByOSH[sc.oshash] = sc
	return sc
}

func (s *Server) mustScene(id string) *scene {
	n, err := strconv.Atoi(id)
	sc := s.lib.sceneByID[n]
	if err != nil || sc == nil {
		panic(fmt.Sprintf("stashtest: no scene %q", id))
	}
	return sc
}

func (s *Server) mustMarker(id string) *marker {
	n, err := strconv.Atoi(id)
	m := s.lib.markerByID[n]
	if err != nil || m == nil {
		panic(fmt.Sprintf("stashtest: no marker %q", id))
	}
	return m
}

// SceneOSHash is the hash Stash names a scene's sprite and VTT files by.
func (s *Server) SceneOSHash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustScene(id).oshash
}

// SceneUpdatedAt is the scene's updated_at.
func (s *Server) SceneUpdatedAt(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustScene(id).updatedAt
}

// TouchScene models a user editing the scene: updated_at becomes now.
func (s *Server) TouchScene(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustScene(id).updatedAt = s.now
}

// DeleteScene removes a scene and, as Stash's foreign keys do, its markers.
func (s *Server) DeleteScene(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.mustScene(id)
	l := &s.lib
	i := sort.Search(len(l.scenes), func(i int) bool { return l.scenes[i].id >= sc.id })
	l.scenes = slices.Delete(l.scenes, i, i+1)
	delete(l.sceneByID, sc.id)
	delete(l.sceneByOSH, sc.oshash)
	if len(sc.markers) > 0 {
		for _, m := range sc.markers {
			delete(l.markerByID, m.id)
		}
		l.markers = slices.DeleteFunc(l.markers, func(m *marker) bool { return m.scene == sc })
	}
}

// MarkerOption sets a field of a marker made by AddMarker.
type MarkerOption func(*marker)

// MarkerTitle sets the title (default "Marker <id>").
func MarkerTitle(title string) MarkerOption { return func(m *marker) { m.title = title } }

// MarkerSeconds sets the start and, if end >= 0, the end in seconds.
func MarkerSeconds(start, end float64) MarkerOption {
	return func(m *marker) {
		m.seconds = start
		m.endSeconds = nil
		if end >= 0 {
			m.endSeconds = &end
		}
	}
}

// MarkerResources marks generated marker files as already present.
func MarkerResources(rs ...Resource) MarkerOption {
	return func(m *marker) {
		for _, r := range rs {
			m.res |= bitFor(r, true)
		}
	}
}

// AddMarker adds a marker to a scene and returns its id. Like Stash, it
// leaves the scene's updated_at alone.
func (s *Server) AddMarker(sceneID string, opts ...MarkerOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.mustScene(sceneID)
	l := &s.lib
	id := l.nextMarker
	l.nextMarker++
	m := &marker{
		id:        id,
		scene:     sc,
		title:     "Marker " + strconv.Itoa(id),
		seconds:   float64(10 * (len(sc.markers) + 1)),
		createdAt: s.now,
		updatedAt: s.now,
	}
	for _, o := range opts {
		o(m)
	}
	sc.markers = append(sc.markers, m)
	l.markers = append(l.markers, m)
	l.markerByID[id] = m
	return strconv.Itoa(id)
}

// TouchMarker models a user editing the marker: its updated_at becomes now
// (the scene's does not).
func (s *Server) TouchMarker(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustMarker(id).updatedAt = s.now
}

// DeleteMarker removes a marker.
func (s *Server) DeleteMarker(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mustMarker(id)
	l := &s.lib
	delete(l.markerByID, m.id)
	i := sort.Search(len(l.markers), func(i int) bool { return l.markers[i].id >= m.id })
	l.markers = slices.Delete(l.markers, i, i+1)
	m.scene.markers = slices.DeleteFunc(m.scene.markers, func(x *marker) bool { return x == m })
}

// SetResources replaces the set of generated files a scene has.
func (s *Server) SetResources(sceneID string, rs ...Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.mustScene(sceneID)
	sc.res = 0
	for _, r := range rs {
		sc.res |= bitFor(r, false)
	}
}

// HasResource reports whether the scene has the generated file.
func (s *Server) HasResource(sceneID string, r Resource) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustScene(sceneID).res&bitFor(r, false) != 0
}

// SetMarkerResources replaces the set of generated files a marker has.
func (s *Server) SetMarkerResources(markerID string, rs ...Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mustMarker(markerID)
	m.res = 0
	for _, r := range rs {
		m.res |= bitFor(r, true)
	}
}

// MarkerHasResource reports whether the marker has the generated file.
func (s *Server) MarkerHasResource(markerID string, r Resource) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustMarker(markerID).res&bitFor(r, true) != 0
}

// FailResource scripts a per-scene generation failure: jobs never produce
// this file for this scene, yet still end FINISHED, as Stash only logs such
// errors.
func (s *Server) FailResource(sceneID string, r Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustScene(sceneID).fail |= bitFor(r, false)
}

// FailMarkerResource is FailResource for a marker's files.
func (s *Server) FailMarkerResource(markerID string, r Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustMarker(markerID).fail |= bitFor(r, true)
}

// SceneCount is the number of scenes in the library.
func (s *Server) SceneCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lib.scenes)
}
