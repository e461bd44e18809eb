// Package notify sends the healthchecks.io-style pings of [notify]
// ping_url: /start when a run starts work, /<exit code> when it ends, with
// the end of the run's log as the body. The same URLs work with
// self-hosted healthchecks and with checkers that copy its API (Uptime
// Kuma's push monitors, for one).
//
// A ping never fails a run: each has a short timeout and a couple of
// retries, and a ping that still fails is logged and forgotten. The ping
// URL usually carries the check's secret UUID, so it is never logged:
// only its scheme and host are.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for Pinger's zero fields.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
	// MaxBody caps the log sent with the final ping (healthchecks.io keeps
	// up to 100 kB; the end of the log is what matters).
	MaxBody = 10 << 10
)

// Budget is the longest a ping can take with the defaults: every attempt
// timing out, and the waits between them. The systemd unit's stop timeout
// leaves room for it.
const Budget = (DefaultRetries+1)*DefaultTimeout + (1+2)*time.Second

// Pinger sends pings to one check.
type Pinger struct {
	// URL is the check's ping URL, e.g. https://hc-ping.com/<uuid>.
	URL string
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a failed ping is sent again; 0 means
	// DefaultRetries, a negative number none.
	Retries int
	// Wait pauses between attempts (1 s, then 2 s, ...); nil means a real
	// timer. Tests replace it so that nothing sleeps.
	Wait func(ctx context.Context, d time.Duration) error
	// Client sends the requests; nil means a client with no redirects.
	Client *http.Client
	// UserAgent names stashgen and its version.
	UserAgent string
	// Log receives one line per ping that failed (with the URL redacted)
	// and a debug line per ping sent.
	Log *slog.Logger
}

// NewRunID returns a random UUID in the canonical lowercase form
// healthchecks.io wants for rid, which pairs a run's /start with its end.
// stashgen's own run id is a number, which healthchecks would refuse, so
// the run logs both.
func NewRunID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Start signals that a run started work: GET <url>/start?rid=<rid>.
func (p *Pinger) Start(ctx context.Context, rid string) error {
	return p.send(ctx, http.MethodGet, "/start", rid, nil)
}

// Exit signals the end of a run with its exit code: POST
// <url>/<code>?rid=<rid>, the body being the end of its log. healthchecks
// counts 0 as success and anything else as failure.
func (p *Pinger) Exit(ctx context.Context, rid string, code int, log []byte) error {
	return p.send(ctx, http.MethodPost, "/"+strconv.Itoa(code), rid, log)
}

// Success signals a run that went well without an exit code in the URL:
// POST <url>?rid=<rid>. stashgen sends it for a run that stood aside
// (exit 75), which healthchecks would otherwise count as a failure.
func (p *Pinger) Success(ctx context.Context, rid string, log []byte) error {
	return p.send(ctx, http.MethodPost, "", rid, log)
}

// EndPing says how a run that exited with code ends its pings: with
// Exit (exit code), with Success (stood aside), or not at all. A run that
// stood aside pings only when pingOnSkip is set, or when it had already
// sent /start: healthchecks would mark a started run down if it never
// heard its end.
func EndPing(code int, started, pingOnSkip bool) (send, success bool) {
	const standAside = 75
	if code != standAside {
		return true, false
	}
	if !started && !pingOnSkip {
		return false, false
	}
	return true, true
}

func (p *Pinger) send(ctx context.Context, method, suffix, rid string, body []byte) error {
	target, err := p.target(suffix, rid)
	if err != nil {
		return err
	}
	if len(body) > MaxBody {
		body = body[len(body)-MaxBody:]
	}
	retries := p.Retries
	if retries == 0 {
		retries = DefaultRetries
	}
	retries = max(retries, 0)
	delay := time.Second
	for attempt := 0; ; attempt++ {
		err = p.once(ctx, method, target, body)
		if err == nil {
			p.logger().Debug("ping sent", "ping", Redact(p.URL)+suffix, "attempts", attempt+1)
			return nil
		}
		var perm *permanentError
		if attempt >= retries || errors.As(err, &perm) || ctx.Err() != nil {
			break
		}
		if werr := p.wait(ctx, delay); werr != nil {
			break
		}
		delay *= 2
	}
	err = fmt.Errorf("ping %s%s: %w", Redact(p.URL), suffix, err)
	p.logger().Warn("ping failed; the run is not affected", "error", err)
	return err
}

// permanentError is an answer a retry will not change (a 4xx).
type permanentError struct{ status int }

func (e *permanentError) Error() string { return "HTTP " + strconv.Itoa(e.status) }

func (p *Pinger) once(ctx context.Context, method, target string, body []byte) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return errors.New("malformed ping URL")
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if p.UserAgent != "" {
		req.Header.Set("User-Agent", p.UserAgent)
	}
	res, err := p.client().Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, secret UUID included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", timeout)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
	_ = res.Body.Close()
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return nil
	case res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusRequestTimeout && res.StatusCode != http.StatusTooManyRequests:
		return &permanentError{status: res.StatusCode}
	}
	return fmt.Errorf("HTTP %d", res.StatusCode)
}

// target appends suffix to the URL's path and rid to its query.
func (p *Pinger) target(suffix, rid string) (string, error) {
	u, err := url.Parse(p.URL)
	if err != nil || u.Host == "" {
		return "", errors.New("ping: malformed notify.ping_url")
	}
	u.Path = strings.TrimRight(u.Path, "/") + suffix
	u.RawPath = ""
	if rid != "" {
		q := u.Query()
		q.Set("rid", rid)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

func (p *Pinger) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (p *Pinger) logger() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Pinger) wait(ctx context.Context, d time.Duration) error {
	if p.Wait != nil {
		return p.Wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Redact is the form of a ping URL that may be printed: scheme and host,
// the path (which holds the check's secret) hidden.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<redacted>"
	}
	if u.Path == "" || u.Path == "/" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + "://" + u.Host + "/<redacted>"
}

// Secret is the part of a ping URL to redact wherever it might appear: its
// path and query, or "" when there is nothing worth hiding.
func Secret(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	s := strings.TrimRight(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	if len(s) < 8 {
		return ""
	}
	return s
}
