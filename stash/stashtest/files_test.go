package stashtest

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestFileRoutes(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	a := s.AddScene(SceneResources(ResourceCover, ResourcePreview, ResourceWebP, ResourceSprite, ResourceVTT))
	b := s.AddScene()
	ma := s.AddMarker(a, MarkerResources(ResourceMarkerStream, ResourceMarkerPreview, ResourceMarkerScreenshot))
	mb := s.AddMarker(b)
	ha, hb := s.SceneOSHash(a), s.SceneOSHash(b)
	c := newClient(t, s)

	const missing = "404 page not found\n" // Go's file server, as in Stash
	const noEntity = "Not Found\n"         // Stash's scene/marker lookup
	tests := []struct {
		path   string
		status int
		ctype  string
		body   string // checked when set
	}{
		{"/scene/" + a + "/preview", 200, typeMP4, ""},
		{"/scene/" + b + "/preview", 404, "", missing},
		{"/scene/" + a + "/webp", 200, typeWebP, ""},
		{"/scene/" + b + "/webp", 404, "", missing},
		{"/scene/" + a + "/screenshot", 200, typeJPEG, ""},
		{"/scene/" + b + "/screenshot", 200, typeSVG, ""},
		{"/scene/" + a + "/screenshot?t=123", 200, typeJPEG, ""},
		{"/scene/" + a + "/stream", 200, typeMP4, ""},
		{"/scene/" + ha + "_sprite.jpg", 200, typeJPEG, ""},
		{"/scene/" + hb + "_sprite.jpg", 404, "", missing},
		{"/scene/" + ha + "_thumbs.vtt", 200, typeVTT, ""},
		{"/scene/" + hb + "_thumbs.vtt", 404, "", missing},
		{"/scene/0123456789abcdef_sprite.jpg", 404, "", missing},
		{"/scene/999/preview", 404, "", noEntity},
		{"/scene/abc/preview", 404, "", noEntity},
		{"/scene/999/screenshot", 404, "", noEntity},
		{"/scene/" + a + "/nope", 404, "", missing},
		{"/scene/" + a + "/scene_marker/" + ma + "/stream", 200, typeMP4, ""},
		{"/scene/" + b + "/scene_marker/" + mb + "/stream", 404, "", missing},
		{"/scene/" + a + "/scene_marker/" + ma + "/preview", 200, typeWebP, ""},
		{"/scene/" + b + "/scene_marker/" + mb + "/preview", 200, typePNG, ""},
		{"/scene/" + a + "/scene_marker/" + ma + "/screenshot", 200, typeJPEG, ""},
		{"/scene/" + b + "/scene_marker/" + mb + "/screenshot", 200, typePNG, ""},
		{"/scene/" + a + "/scene_marker/999/stream", 404, "", noEntity},
		{"/scene/999/scene_marker/" + ma + "/stream", 404, "", noEntity},
		{"/scene/" + b + "/scene_marker/" + ma + "/stream", 404, "", missing}, // marker under the wrong scene
		{"/scene/" + b + "/scene_marker/" + ma + "/preview", 200, typePNG, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := c.get(http.MethodGet, s.URL()+tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tt.status, body)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("content type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if tt.status == 200 && len(body) == 0 {
				t.Error("empty body")
			}
		})
	}

	resp, body := c.get(http.MethodGet, s.URL()+"/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("UI: %d %q", resp.StatusCode, body)
	}
}

func TestFileRoutes_Range(t *testing.T) {
	t.Parallel()
	s := New(t)
	a := s.AddScene(SceneResources(ResourcePreview, ResourceSprite))
	c := newClient(t, s)
	for _, p := range []string{"/scene/" + a + "/preview", "/scene/" + s.SceneOSHash(a) + "_sprite.jpg", "/scene/" + a + "/screenshot"} {
		resp, body := c.get(http.MethodGet, s.URL()+p, map[string]string{"Range": "bytes=0-0"})
		full, fullBody := c.get(http.MethodGet, s.URL()+p, nil)
		if resp.StatusCode != http.StatusPartialContent || len(body) != 1 {
			t.Fatalf("%s: status %d, %d bytes", p, resp.StatusCode, len(body))
		}
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 0-0/"+strconv.Itoa(len(fullBody)) {
			t.Errorf("%s: Content-Range %q", p, cr)
		}
		if full.StatusCode != 200 || body[0] != fullBody[0] {
			t.Errorf("%s: full %d", p, full.StatusCode)
		}
	}
}

func TestFileRoutes_MethodsNotRouted(t *testing.T) {
	t.Parallel()
	s := New(t)
	a := s.AddScene(SceneResources(ResourcePreview, ResourceSprite, ResourceVTT))
	c := newClient(t, s)
	h := s.SceneOSHash(a)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodHead, "/scene/" + a + "/preview", 405},
		{http.MethodHead, "/scene/" + a + "/screenshot", 405},
		{http.MethodHead, "/scene/" + a + "/scene_marker/1/preview", 405},
		{http.MethodPost, "/scene/" + a + "/preview", 405},
		{http.MethodHead, "/scene/" + h + "_sprite.jpg", 400},
		{http.MethodHead, "/scene/" + h + "_thumbs.vtt", 400},
	}
	for _, tt := range tests {
		resp, _ := c.get(tt.method, s.URL()+tt.path, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
	}
}

func TestFileRoutes_Auth(t *testing.T) {
	t.Parallel()
	s := New(t, WithAPIKey("k"))
	a := s.AddScene(SceneResources(ResourcePreview, ResourceSprite, ResourceVTT))
	h := s.SceneOSHash(a)
	noKey := &client{t: t, s: s}
	tests := []struct {
		path     string
		status   int
		location string
	}{
		{"/scene/" + a + "/preview", 302, "/login?returnURL=%2Fscene%2F" + a + "%2Fpreview"},
		{"/scene/" + a + "/screenshot?t=1", 302, "/login?returnURL=%2Fscene%2F" + a + "%2Fscreenshot%3Ft%3D1"},
		{"/scene/" + a + "/scene_marker/1/stream", 302, ""},
		{"/scene/999/preview", 302, ""},
		{"/", 302, ""},
		{"/scene/" + h + "_sprite.jpg", 401, ""},
		{"/scene/" + h + "_thumbs.vtt", 401, ""},
	}
	for _, tt := range tests {
		resp, _ := noKey.get(http.MethodGet, s.URL()+tt.path, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		if tt.location != "" && resp.Header.Get("Location") != tt.location {
			t.Errorf("%s: Location %q", tt.path, resp.Header.Get("Location"))
		}
	}
	wrong := &client{t: t, s: s, key: "bad"}
	if resp, _ := wrong.get(http.MethodGet, s.URL()+"/scene/"+a+"/preview", nil); resp.StatusCode != 302 {
		t.Errorf("wrong key: %d", resp.StatusCode)
	}
	// The stream URL Stash hands out embeds the key as a query parameter.
	if resp, _ := noKey.get(http.MethodGet, s.URL()+"/scene/"+a+"/stream?apikey=k", nil); resp.StatusCode != 200 {
		t.Errorf("apikey parameter: %d", resp.StatusCode)
	}
	for _, f := range s.FileRequests() {
		if f.Path == "/scene/"+a+"/stream" && (!f.KeyPresent || !f.KeyValid) {
			t.Errorf("apikey parameter not logged as key: %+v", f)
		}
	}
}
