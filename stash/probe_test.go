package stash

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestClassifyProbe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		res   Resource
		code  int
		ctype string
		body  string
		want  ProbeResult
		kind  Kind
	}{
		{"preview 206", ResPreview, 206, "video/mp4", "\x00", Present, 0},
		{"preview 200 (range ignored)", ResPreview, 200, "video/mp4", "\x00\x00\x00\x18ftyp", Present, 0},
		{"webp", ResWebp, 206, "image/webp", "R", Present, 0},
		{"sprite", ResSprite, 206, "image/jpeg", "\xff", Present, 0},
		{"vtt", ResVTT, 200, "text/vtt; charset=utf-8", "WEBVTT", Present, 0},
		{"marker stream", ResMarkerStream, 206, "video/mp4", "\x00", Present, 0},
		{"marker preview webp", ResMarkerPreview, 206, "image/webp", "R", Present, 0},
		{"marker screenshot jpg", ResMarkerScreenshot, 206, "image/jpeg", "\xff", Present, 0},
		{"marker preview placeholder", ResMarkerPreview, 206, "image/png", "\x89", Missing, 0},
		{"marker screenshot placeholder", ResMarkerScreenshot, 200, "image/png", "\x89PNG", Missing, 0},
		// Only marker images fall back to the PNG placeholder.
		{"scene sprite png", ResSprite, 200, "image/png", "\x89PNG", Present, 0},

		{"missing file", ResPreview, 404, "text/plain; charset=utf-8", "404 page not found\n", Missing, 0},
		{"missing marker stream", ResMarkerStream, 404, "text/plain; charset=utf-8", "404 page not found\n", Missing, 0},
		{"unknown scene", ResPreview, 404, "text/plain; charset=utf-8", "Not Found\n", Gone, 0},
		{"unknown marker", ResMarkerScreenshot, 404, "text/plain; charset=utf-8", "Not Found\n", Gone, 0},
		{"empty 404", ResVTT, 404, "", "", Missing, 0},

		{"login redirect", ResPreview, 302, "", "", 0, KindAuth},
		{"other redirect", ResPreview, 301, "", "", 0, KindAuth},
		{"401", ResSprite, 401, "text/plain", "Unauthorized\n", 0, KindAuth},
		{"403", ResWebp, 403, "text/plain", "Stash is exposed", 0, KindAuth},
		{"500", ResPreview, 500, "text/plain", "Internal Server Error", 0, KindUnavailable},
		{"503", ResPreview, 503, "text/html", "<html>", 0, KindUnavailable},
		{"405 (HEAD or POST)", ResPreview, 405, "", "", 0, KindProtocol},
		{"400", ResSprite, 400, "", "", 0, KindProtocol},
		{"416 zero-byte file", ResPreview, 416, "", "", Missing, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := &http.Response{StatusCode: tc.code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
			if tc.ctype != "" {
				res.Header.Set("Content-Type", tc.ctype)
			}
			got, e := classifyProbe(tc.res, res)
			if tc.kind != 0 {
				if e == nil || e.Kind != tc.kind || e.Status != tc.code {
					t.Fatalf("classifyProbe = %v, %v; want kind %d", got, e, tc.kind)
				}
				return
			}
			if e != nil || got != tc.want {
				t.Fatalf("classifyProbe = %v, %v; want %v", got, e, tc.want)
			}
		})
	}
}

// TestProbe_Request: a probe is a GET of the path alone on the configured
// base, with the key and a one-byte range, and follows no redirect.
func TestProbe_Request(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request, _ gqlBody) {
		switch r.URL.Path {
		case "/scene/1/preview":
			w.Header().Set("Content-Type", "video/mp4")
			w.Header().Set("Content-Range", "bytes 0-0/1000")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write([]byte{0})
		case "/scene/2/preview":
			http.Redirect(w, r, "/login?returnURL=%2Fscene%2F2%2Fpreview", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	c := newTestClient(t, s.URL)
	// Stash reports URLs under whatever host it was asked by, with the key
	// in stream URLs; only the path may be used.
	got, err := c.Probe(context.Background(), ResPreview, "http://other-host:1234/scene/1/preview?apikey="+testKey+"#t=1")
	if err != nil || got != Present {
		t.Fatalf("Probe = %v, %v; want present", got, err)
	}
	_, err = c.Probe(context.Background(), ResPreview, "/scene/2/preview")
	wantKind(t, err, KindAuth)
	noSecret(t, "probe error", err.Error())

	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (no redirect followed): %+v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet {
			t.Errorf("method %s, want GET", r.Method)
		}
		if r.Header.Get("Range") != "bytes=0-0" {
			t.Errorf("Range = %q", r.Header.Get("Range"))
		}
		if r.Header.Get("ApiKey") != testKey {
			t.Errorf("ApiKey = %q", r.Header.Get("ApiKey"))
		}
		if r.Query != "" {
			t.Errorf("probe sent query %q", r.Query)
		}
	}
	if reqs[0].Path != "/scene/1/preview" {
		t.Errorf("path = %q", reqs[0].Path)
	}
}

func TestProbe_UnusableURL(t *testing.T) {
	t.Parallel()
	s := newStub(t, answering(200, ""))
	c := newTestClient(t, s.URL)
	for _, raw := range []string{"", "http://host", "http://host?apikey=" + testKey, "mailto:" + testKey, "%zz"} {
		_, err := c.Probe(context.Background(), ResPreview, raw)
		wantKind(t, err, KindProtocol)
		noSecret(t, "probe error", err.Error())
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("%d requests for unusable URLs", n)
	}
}

func TestFilePath(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"http://localhost:9999/scene/12/stream?apikey=" + testKey: "/scene/12/stream",
		"http://192.168.1.5:9999/scene/12/preview":                "/scene/12/preview",
		"https://u:hunter2@stash.lan/scene/abc_sprite.jpg?x=1#f":  "/scene/abc_sprite.jpg",
		"http://h/scene/12/scene_marker/7/screenshot":             "/scene/12/scene_marker/7/screenshot",
		"/scene/12/webp":                  "/scene/12/webp",
		"http://h/scene/a%2Fb_thumbs.vtt": "/scene/a%2Fb_thumbs.vtt",
		"http://h/scene/12/stream?apikey=" + testKey + "&resolution=ORIGINAL": "/scene/12/stream",
		"":                      "",
		"%zz":                   "",
		"mailto:" + testKey:     "",
		"http://h?k=" + testKey: "",
	}
	for raw, want := range cases {
		got := FilePath(raw)
		if got != want {
			t.Errorf("FilePath(%q) = %q, want %q", raw, got, want)
		}
		noSecret(t, "FilePath", got, "hunter2")
	}
}
