package stash

// Fuzz targets for every decoder of Stash answers. Seed corpora live in
// testdata/fuzz/<FuzzName>/ (valid answers, null, HTML, truncated bodies,
// bodies echoing the key); `go test` runs them, `go test -fuzz` grows them.
// Each iteration answers from memory: no network.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkFuzzError holds for every error a client method returns on a 200
// answer: it is a *Error of a known kind (or ErrJobNotFound where allowed),
// it never says the key was rejected, and it never prints the key.
func checkFuzzError(t *testing.T, err error, notFoundOK bool) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, testKey) {
		t.Fatalf("error leaks the API key: %s", msg)
	}
	if notFoundOK && errors.Is(err, ErrJobNotFound) {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not a *stash.Error: %v", err, err)
	}
	switch e.Kind {
	case KindUnavailable, KindGraphQL, KindProtocol:
	default:
		t.Fatalf("a 200 answer gave kind %d: %v", e.Kind, err)
	}
	if e.ExitCode() != 69 {
		t.Fatalf("exit code %d: %v", e.ExitCode(), err)
	}
	if strings.Contains(e.Hint(), testKey) {
		t.Fatalf("hint leaks the API key: %s", e.Hint())
	}
}

// fuzzClient answers every request with a 200 and body, from memory.
func fuzzClient(t *testing.T, body []byte) *Client {
	c, err := New(Options{URL: "http://admin:hunter2@stash.invalid:9999", APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	c.api.base = memTransport{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}},
		body: body, length: int64(len(body))}
	return c
}

func FuzzCheckAPIAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte) {
		res := &http.Response{StatusCode: status, Header: http.Header{}}
		res.Header.Set("Content-Type", ctype)
		res.Header.Set("Location", ctype)
		e := checkAPIAnswer(res, body, testKey)
		if e == nil {
			if status != http.StatusOK {
				t.Fatalf("accepted HTTP %d", status)
			}
			// What passes must be an object that machinebox/graphql can
			// decode without tripping over it.
			if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
				t.Fatalf("accepted a body that is not a JSON object: %q", body)
			}
			return
		}
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			if e.Kind != KindAuth {
				t.Fatalf("HTTP %d gave kind %d", status, e.Kind)
			}
		case status >= 500:
			if e.Kind != KindUnavailable {
				t.Fatalf("HTTP %d gave kind %d", status, e.Kind)
			}
		case e.Kind < KindUnavailable || e.Kind > KindProtocol:
			t.Fatalf("kind %d", e.Kind)
		}
		if e.Status != status {
			t.Fatalf("status %d, want %d", e.Status, status)
		}
		if strings.Contains(e.Msg, testKey) {
			t.Fatalf("message leaks the key: %s", e.Msg)
		}
		for i := 0; i < len(e.Msg); i++ {
			if c := e.Msg[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("message has byte %#x: %q", c, e.Msg)
			}
		}
		if e.Kind != KindGraphQL && len(e.Msg) > 400 {
			t.Fatalf("message of %d bytes: %s", len(e.Msg), e.Msg)
		}
	})
}

func FuzzJobQueueDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, err := fuzzClient(t, body).JobQueue(context.Background())
		checkFuzzError(t, err, false)
		if err != nil && jobs != nil {
			t.Fatalf("jobs %v with error %v", jobs, err)
		}
	})
}

func FuzzFindJobDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := fuzzClient(t, body).FindJob(context.Background(), "7")
		checkFuzzError(t, err, true)
		if err != nil && j.ID != "" {
			t.Fatalf("job %+v with error %v", j, err)
		}
	})
}

func FuzzStopJobDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFuzzError(t, fuzzClient(t, body).StopJob(context.Background(), "7"), false)
	})
}

func FuzzGenerateDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := fuzzClient(t, body).Generate(context.Background(), GenerateInput{Toggles: Toggles{Previews: Bool(true)}, SceneIDs: []string{"1", "2"}})
		checkFuzzError(t, err, false)
		if (err == nil) == (l.JobID == "") {
			t.Fatalf("Generate = %q, %v", l.JobID, err)
		}
	})
}

func FuzzGenerateDefaultsDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		g, err := fuzzClient(t, body).GenerateDefaults(context.Background())
		checkFuzzError(t, err, false)
		if err != nil && g != (Toggles{}) {
			t.Fatalf("defaults %+v with error %v", g, err)
		}
	})
}

func FuzzScenesDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		c := fuzzClient(t, body)
		for _, fn := range []func(context.Context, SceneQuery) (ScenePage, error){c.Scenes, c.SceneIDs} {
			page, err := fn(context.Background(), SceneQuery{AfterID: 10, UpToID: 20, IsMissing: "cover", PerPage: 5})
			checkFuzzError(t, err, false)
			if err != nil && (page.Count != 0 || page.Scenes != nil) {
				t.Fatalf("page %+v with error %v", page, err)
			}
			for _, s := range page.Scenes {
				storedPath(t, s.Paths.Preview)
			}
		}
	})
}

func FuzzMarkersDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := fuzzClient(t, body).Markers(context.Background(), MarkerQuery{SceneIDFrom: 1, SceneIDTo: 9, Page: 2, PerPage: 5})
		checkFuzzError(t, err, false)
		if err != nil && (page.Count != 0 || page.Markers != nil) {
			t.Fatalf("page %+v with error %v", page, err)
		}
		for _, m := range page.Markers {
			storedPath(t, m.Stream)
		}
	})
}

func FuzzKnownScenesDecode(f *testing.F) {
	ask := []string{"1", "2", "x", "4"}
	f.Fuzz(func(t *testing.T, body []byte) {
		known, err := fuzzClient(t, body).KnownScenes(context.Background(), ask)
		checkFuzzError(t, err, false)
		if err != nil && known != nil {
			t.Fatalf("known %v with error %v", known, err)
		}
		for id := range known {
			if id != "1" && id != "2" && id != "4" {
				t.Fatalf("known has %q, which was never asked about (or is not an id)", id)
			}
		}
	})
}

var probeResources = []Resource{ResPreview, ResWebp, ResSprite, ResVTT, ResMarkerStream, ResMarkerPreview, ResMarkerScreenshot}

func FuzzClassifyProbe(f *testing.F) {
	f.Fuzz(func(t *testing.T, which uint8, status int, ctype string, body []byte) {
		r := probeResources[int(which)%len(probeResources)]
		res := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}},
			Body: io.NopCloser(bytes.NewReader(body))}
		got, e := classifyProbe(r, res)
		if e != nil {
			if got != 0 {
				t.Fatalf("result %v with error %v", got, e)
			}
			if e.Status != status || strings.Contains(e.Msg, testKey) {
				t.Fatalf("error %+v", e)
			}
		}
		switch {
		case status == http.StatusOK || status == http.StatusPartialContent:
			if e != nil || (got != Present && got != Missing) {
				t.Fatalf("HTTP %d: %v, %v", status, got, e)
			}
			if got == Missing && (r != ResMarkerPreview && r != ResMarkerScreenshot || !strings.HasPrefix(ctype, "image/png")) {
				t.Fatalf("HTTP %d %s for %s: missing", status, ctype, r)
			}
		case status == http.StatusNotFound:
			if e != nil || (got != Missing && got != Gone) {
				t.Fatalf("HTTP 404: %v, %v", got, e)
			}
			if got == Gone && strings.TrimSpace(string(body[:min(len(body), 64)])) != "Not Found" {
				t.Fatalf("HTTP 404 %q: gone", body)
			}
		case status == http.StatusRequestedRangeNotSatisfiable: // a zero-byte file
			if e != nil || got != Missing {
				t.Fatalf("HTTP 416: %v, %v; want missing", got, e)
			}
		case status == http.StatusUnauthorized || status == http.StatusForbidden || (status >= 300 && status < 400):
			if e == nil || e.Kind != KindAuth {
				t.Fatalf("HTTP %d: %v, %v; want KindAuth", status, got, e)
			}
		case status >= 500:
			if e == nil || e.Kind != KindUnavailable {
				t.Fatalf("HTTP %d: %v, %v; want KindUnavailable", status, got, e)
			}
		default:
			if e == nil || e.Kind != KindProtocol {
				t.Fatalf("HTTP %d: %v, %v; want KindProtocol", status, got, e)
			}
		}
	})
}

// TestFuzzCorpora keeps the seed corpora honest: each target has some.
func TestFuzzCorpora(t *testing.T) {
	for _, name := range []string{"FuzzCheckAPIAnswer", "FuzzJobQueueDecode", "FuzzFindJobDecode", "FuzzStopJobDecode",
		"FuzzGenerateDecode", "FuzzGenerateDefaultsDecode", "FuzzScenesDecode", "FuzzMarkersDecode",
		"FuzzKnownScenesDecode", "FuzzClassifyProbe"} {
		entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
		if err != nil || len(entries) < 4 {
			t.Errorf("%s: %d seeds (%v), want a handful", name, len(entries), err)
		}
	}
}

// storedPath checks what stashgen keeps of a URL Stash sent: the key rides
// in the query (stream URLs carry ?apikey=), so nothing of the query may
// survive. A path that merely equals the key is not something Stash sends.
func storedPath(t *testing.T, raw string) {
	t.Helper()
	p := FilePath(raw)
	if strings.ContainsAny(p, "?#") {
		t.Fatalf("FilePath(%q) = %q keeps a query", raw, p)
	}
	if u, err := url.Parse(raw); err == nil && u.RawQuery != "" && strings.Contains(p, u.RawQuery) {
		t.Fatalf("FilePath(%q) = %q keeps the query %q", raw, p, u.RawQuery)
	}
}
