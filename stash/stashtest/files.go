package stashtest

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Small stand-ins for the real files. Only the leading magic bytes are
// real; clients only check status, type and length.
var (
	bodyMP4  = []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isomstashtest-mp4")
	bodyJPEG = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00stashtest-jpeg\xff\xd9")
	bodyWebP = []byte("RIFF\x1c\x00\x00\x00WEBPVP8 stashtest-webp")
	bodyPNG  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDRstashtest-png")
	bodySVG  = []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 9"><rect width="16" height="9"/></svg>`)
)

const (
	typeMP4  = "video/mp4"
	typeJPEG = "image/jpeg"
	typeWebP = "image/webp"
	typePNG  = "image/png"
	typeSVG  = "image/svg+xml"
	typeVTT  = "text/vtt; charset=utf-8"
)

// fileRoute is a parsed /scene/... path.
type fileRoute struct {
	hashName string // "<oshash>_sprite.jpg" style routes: the hash
	hashKind string // "sprite" or "vtt"
	sceneID  string
	markerID string // set for /scene/<sid>/scene_marker/<mid>/<action>
	action   string
}

func parseFileRoute(p string) (fileRoute, bool) {
	parts := strings.Split(strings.TrimPrefix(p, "/scene/"), "/")
	switch len(parts) {
	case 1:
		name := parts[0]
		if h, ok := strings.CutSuffix(name, "_sprite.jpg"); ok && h != "" {
			return fileRoute{hashName: h, hashKind: "sprite"}, true
		}
		if h, ok := strings.CutSuffix(name, "_thumbs.vtt"); ok && h != "" {
			return fileRoute{hashName: h, hashKind: "vtt"}, true
		}
	case 2:
		switch parts[1] {
		case "preview", "webp", "screenshot", "stream", "funscript", "interactive_heatmap", "caption":
			return fileRoute{sceneID: parts[0], action: parts[1]}, true
		}
	case 4:
		if parts[1] == "scene_marker" {
			switch parts[3] {
			case "stream", "preview", "screenshot":
				return fileRoute{sceneID: parts[0], markerID: parts[2], action: parts[3]}, true
			}
		}
	}
	return fileRoute{}, false
}

// serveFile serves Stash's generated-file routes with Stash's quirks: a
// missing file is Go's "404 page not found", an unknown scene or marker is
// "Not Found", and some routes fall back to placeholder images with 200.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	present, valid := s.checkKey(r)
	route, ok := parseFileRoute(r.URL.Path)
	var fault FaultKind
	defer func() { s.logFile(r, present, valid, sw.status, fault) }()

	s.mu.Lock()
	f := s.takeFault(false, nil, r.URL.Path, false)
	s.mu.Unlock()
	if f != nil {
		fault = f.Kind
		if s.applyFault(sw, r, f, "") {
			return
		}
	}

	if !valid {
		if ok && route.hashName != "" {
			s.denyUnauthorized(sw)
		} else {
			s.denyRedirect(sw, r)
		}
		return
	}
	if !ok {
		http.NotFound(sw, r)
		return
	}
	if r.Method != http.MethodGet {
		if route.hashName != "" {
			sw.WriteHeader(http.StatusBadRequest)
		} else {
			sw.WriteHeader(http.StatusMethodNotAllowed)
		}
		return
	}

	body, ctype, status := s.lookupFile(route)
	switch status {
	case http.StatusOK:
		sw.Header().Set("Content-Type", ctype)
		http.ServeContent(sw, r, "", time.Time{}, bytes.NewReader(body))
	case statusNoEntity:
		http.Error(sw, "Not Found", http.StatusNotFound)
	default:
		http.NotFound(sw, r)
	}
}

// lookupFile decides what a route serves. statusNoEntity (an unknown scene
// or marker) maps to 404 "Not Found", missing files to 404 "404 page not
// found".
func (s *Server) lookupFile(rt fileRoute) (body []byte, ctype string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt.hashName != "" {
		sc := s.lib.sceneByOSH[rt.hashName]
		switch {
		case sc == nil:
			return nil, "", http.StatusNotFound
		case rt.hashKind == "sprite" && sc.has(ResourceSprite):
			return bodyJPEG, typeJPEG, http.StatusOK
		case rt.hashKind == "vtt" && sc.has(ResourceVTT):
			vtt := "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n" + sc.oshash + "_sprite.jpg#xywh=0,0,160,90\n"
			return []byte(vtt), typeVTT, http.StatusOK
		}
		return nil, "", http.StatusNotFound
	}
	id, err := strconv.Atoi(rt.sceneID)
	sc := s.lib.sceneByID[id]
	if err != nil || sc == nil {
		return nil, "", statusNoEntity
	}
	if rt.markerID != "" {
		mid, err := strconv.Atoi(rt.markerID)
		m := s.lib.markerByID[mid]
		if err != nil || m == nil {
			return nil, "", statusNoEntity
		}
		// Stash finds marker files by the scene in the URL; under another
		// scene they are simply not there.
		var res uint16
		if m.scene == sc {
			res = m.res
		}
		has := func(r Resource) bool { return res&resourceBits[r] != 0 }
		switch rt.action {
		case "stream":
			if has(ResourceMarkerStream) {
				return bodyMP4, typeMP4, http.StatusOK
			}
			return nil, "", http.StatusNotFound
		case "preview":
			if has(ResourceMarkerPreview) {
				return bodyWebP, typeWebP, http.StatusOK
			}
			return bodyPNG, typePNG, http.StatusOK
		default: // screenshot
			if has(ResourceMarkerScreenshot) {
				return bodyJPEG, typeJPEG, http.StatusOK
			}
			return bodyPNG, typePNG, http.StatusOK
		}
	}
	switch rt.action {
	case "preview":
		if sc.has(ResourcePreview) {
			return bodyMP4, typeMP4, http.StatusOK
		}
	case "webp":
		if sc.has(ResourceWebP) {
			return bodyWebP, typeWebP, http.StatusOK
		}
	case "screenshot":
		if sc.has(ResourceCover) {
			return bodyJPEG, typeJPEG, http.StatusOK
		}
		return bodySVG, typeSVG, http.StatusOK
	case "stream":
		return bodyMP4, typeMP4, http.StatusOK
	}
	return nil, "", http.StatusNotFound
}

// statusNoEntity is lookupFile's internal code for "unknown scene or
// marker"; serveFile turns it into a 404.
const statusNoEntity = 4040
