package stash

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Resource is one generated file stashgen can probe.
type Resource string

const (
	ResPreview          Resource = "preview"           // scene video preview (mp4)
	ResWebp             Resource = "webp"              // scene animated image preview
	ResSprite           Resource = "sprite"            // scrubber sprite image
	ResVTT              Resource = "vtt"               // scrubber thumbnails index
	ResMarkerStream     Resource = "marker_stream"     // marker video preview
	ResMarkerPreview    Resource = "marker_preview"    // marker animated image preview (webp)
	ResMarkerScreenshot Resource = "marker_screenshot" // marker still (jpg)
	// Covers and phashes are not files stashgen can probe: the screenshot
	// route always answers 200 with a fallback image. They are found with
	// findScenes(scene_filter: {is_missing: ...}) instead.
	ResCover Resource = "cover"
	ResPhash Resource = "phash"
)

// ProbeResult is what a probe found.
type ProbeResult int

const (
	Present ProbeResult = iota + 1 // Stash serves the real file
	Missing                        // the file does not exist (yet)
	Gone                           // Stash does not know the scene or marker: it was deleted
)

func (r ProbeResult) String() string {
	switch r {
	case Present:
		return "present"
	case Missing:
		return "missing"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Probe asks Stash for the first byte of a generated file. It sends the API
// key, never follows a redirect (a redirect means the login page), and
// never downloads the file. HEAD is not routed by Stash, so it is a GET
// with Range: bytes=0-0.
func (c *Client) Probe(ctx context.Context, r Resource, raw string) (ProbeResult, error) {
	u, err := c.fileURL(raw)
	if err != nil {
		return 0, err
	}
	op := "GET " + u.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, c.fail(&Error{Op: op, URL: redactURL(c.base), Kind: KindProtocol, Err: err})
	}
	req.Header.Set("Range", "bytes=0-0")
	if c.key != "" {
		req.Header.Set("ApiKey", c.key)
	}
	res, err := c.files.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, c.fail(&Error{Op: op, URL: redactURL(c.base), Kind: KindUnavailable, Err: describeNetErr(unwrapURLError(err))})
	}
	defer func() {
		// Drain a small body so the connection is reused; a server that
		// ignored the range gets its connection closed instead.
		_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
		res.Body.Close()
	}()
	result, perr := classifyProbe(r, res)
	if perr != nil {
		perr.Op, perr.URL = op, redactURL(c.base)
		return 0, c.fail(perr)
	}
	return result, nil
}

func classifyProbe(r Resource, res *http.Response) (ProbeResult, *Error) {
	switch s := res.StatusCode; {
	case s == http.StatusOK || s == http.StatusPartialContent:
		// Marker images fall back to a PNG placeholder; the real files are
		// webp and jpg.
		if (r == ResMarkerPreview || r == ResMarkerScreenshot) &&
			strings.HasPrefix(res.Header.Get("Content-Type"), "image/png") {
			return Missing, nil
		}
		return Present, nil
	case s == http.StatusNotFound:
		head, _ := io.ReadAll(io.LimitReader(res.Body, 64))
		// "Not Found" is Stash's answer for an id it does not know;
		// "404 page not found" is the router's answer for a missing file.
		if string(bytes.TrimSpace(head)) == "Not Found" {
			return Gone, nil
		}
		return Missing, nil
	case s == http.StatusRequestedRangeNotSatisfiable:
		// A zero-byte file has no first byte: a generation that failed
		// half-way, not a file Stash can serve.
		return Missing, nil
	case s == http.StatusUnauthorized || s == http.StatusForbidden || (s >= 300 && s < 400):
		return 0, &Error{Kind: KindAuth, Status: s, Msg: fmt.Sprintf("HTTP %d for a generated file (the login page, not the file)", s)}
	case s >= 500:
		return 0, &Error{Kind: KindUnavailable, Status: s, Msg: fmt.Sprintf("HTTP %d", s)}
	default:
		return 0, &Error{Kind: KindProtocol, Status: s, Msg: fmt.Sprintf("HTTP %d for a generated file", s)}
	}
}

// fileURL keeps only the path of a URL Stash reported, on the configured
// base: Stash builds its URLs from the Host it was asked under, and the
// query may carry the API key.
func (c *Client) fileURL(raw string) (*url.URL, error) {
	p, err := url.Parse(raw)
	if err != nil || p.Path == "" {
		return nil, c.fail(&Error{Op: "probe", URL: redactURL(c.base), Kind: KindProtocol, Msg: "stash reported an unusable file URL"})
	}
	u := *c.base
	u.Path, u.RawPath = p.Path, p.RawPath
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return &u, nil
}

// FilePath is the path of a Stash file URL without host or query, the form
// stashgen stores: it never carries the API key.
func FilePath(raw string) string {
	p, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return p.EscapedPath()
}
