package stash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckAPIAnswer(t *testing.T) {
	t.Parallel()
	long := func(c byte) string { return "field " + strings.Repeat(string(c), 150) + " is wrong" }
	cases := []struct {
		name     string
		status   int
		ctype    string
		location string
		body     string
		kind     Kind     // 0 = accepted
		has      []string // substrings of Msg
		hasNot   []string
	}{
		{"data", 200, "application/json", "", `{"data":{"jobQueue":[]}}`, 0, nil, nil},
		{"null field", 200, "application/json", "", `{"data":{"findJob":null}}`, 0, nil, nil},
		{"empty errors with data", 200, "application/json", "", `{"errors":[],"data":{"stopJob":true}}`, 0, nil, nil},
		{"padded", 200, "application/json", "", " \n\t{\"data\":{\"stopJob\":true}}\n", 0, nil, nil},

		{"401 text", 401, "text/plain; charset=utf-8", "", "Unauthorized\n", KindAuth, []string{"401"}, nil},
		{"401 json", 401, "application/json", "", `{"errors":[{"message":"unauthorized"}]}`, KindAuth, nil, nil},
		{"403", 403, "text/plain", "", "Stash is exposed to the public internet without authentication", KindAuth, []string{"403"}, nil},
		{"302 login", 302, "", "/login?returnURL=%2Fgraphql", "", KindAuth, []string{"login"}, nil},
		{"301 elsewhere", 301, "", "https://stash.lan/graphql", "", KindProtocol, []string{"https://stash.lan/graphql", "stash.url"}, nil},
		{"307 with key", 307, "", "https://stash.lan/graphql?apikey=" + testKey, "", KindProtocol, []string{"apikey=<redacted>"}, nil},

		{"500 text", 500, "text/plain", "", "Internal Server Error\n", KindUnavailable, []string{"500", "Internal Server Error"}, nil},
		{"502 html", 502, "text/html", "", "<html><body><h1>502 Bad Gateway</h1></body></html>", KindUnavailable, []string{"502"}, nil},
		{"503 json errors", 503, "application/json", "", `{"errors":[{"message":"db locked"}]}`, KindUnavailable, []string{"503"}, nil},

		{"200 html", 200, "text/html; charset=utf-8", "", `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stash</title></head><body><div id="root"></div></body></html>`,
			KindUnavailable, []string{"not JSON", "text/html", "<!doctype html>"}, nil},
		{"truncated", 200, "application/json", "", `{"data":{"findJob":{"id":"1","status":"RUNN`, KindUnavailable, []string{"not JSON"}, nil},
		{"not json", 200, "application/json", "", "upstream connect error or disconnect/reset before headers", KindUnavailable, []string{"upstream connect error"}, nil},
		{"empty 200", 200, "application/json", "", "", KindUnavailable, []string{"(empty)"}, nil},
		{"204", 204, "", "", "", KindUnavailable, nil, nil},
		{"html 404", 404, "text/html", "", "<h1>Not Found</h1>", KindUnavailable, nil, nil},

		{"422 validation", 422, "application/json", "",
			`{"errors":[{"message":"Cannot query field \"nope\" on type \"Query\".","locations":[{"line":1,"column":3}],"extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}},
			            {"message":"Unknown argument \"x\" on field \"Query.findJob\".","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"data":null}`,
			KindGraphQL, []string{`Cannot query field "nope" on type "Query".`, `Unknown argument "x" on field "Query.findJob".`}, nil},
		{"422 parse", 422, "application/json", "", `{"errors":[{"message":"Expected Name, found <EOF>.","extensions":{"code":"GRAPHQL_PARSE_FAILED"}}],"data":null}`,
			KindGraphQL, []string{"Expected Name, found <EOF>."}, nil},
		{"200 resolver errors with data", 200, "application/json", "",
			`{"errors":[{"message":"first","path":["a"]},{"message":"second","path":["b"]},{"message":"third","path":["c"]}],"data":{"a":null,"b":null,"c":null}}`,
			KindGraphQL, []string{"first", "second", "third"}, nil},
		{"all long messages kept", 200, "application/json", "",
			fmt.Sprintf(`{"errors":[{"message":%q},{"message":%q},{"message":%q}],"data":null}`, long('a'), long('b'), long('c')),
			KindGraphQL, []string{"field aaaa", "field bbbb", "field cccc"}, nil},
		{"400 transport", 400, "application/json", "", `{"errors":[{"message":"transport not supported"}],"data":null}`, KindGraphQL, []string{"transport not supported"}, nil},
		{"error message with key", 200, "application/json", "", `{"errors":[{"message":"bad key ` + testKey + `"}],"data":null}`,
			KindGraphQL, []string{"bad key"}, []string{testKey}},

		// machinebox/graphql would hand these to the caller as success.
		{"400 without errors", 400, "application/json", "", `{"data":{"jobQueue":null}}`, KindProtocol, []string{"400"}, nil},
		{"404 json", 404, "application/json", "", `{"message":"no route"}`, KindProtocol, []string{"404"}, nil},
		{"422 empty errors", 422, "application/json", "", `{"errors":[]}`, KindProtocol, []string{"422"}, nil},

		// Valid JSON that is not a GraphQL answer.
		{"null", 200, "application/json", "", `null`, KindProtocol, nil, nil},
		{"array", 200, "application/json", "", `[{"data":{}}]`, KindProtocol, nil, nil},
		{"string", 200, "application/json", "", `"ok"`, KindProtocol, nil, nil},
		{"number", 200, "application/json", "", `42`, KindProtocol, nil, nil},
		{"no data no errors", 200, "application/json", "", `{}`, KindProtocol, nil, nil},
		{"data null no errors", 200, "application/json", "", `{"data":null}`, KindProtocol, nil, nil},
		{"data not an object", 200, "application/json", "", `{"data":[1,2]}`, KindProtocol, nil, nil},
		{"errors not a list", 200, "application/json", "", `{"errors":"boom","data":null}`, KindProtocol, nil, nil},
		{"errors of null", 200, "application/json", "", `{"errors":[null],"data":null}`, KindGraphQL, nil, nil},

		// Snippets are short, printable and keep secrets out.
		{"echoed key", 200, "text/html", "", "<pre>GET /graphql\nApiKey: " + testKey + "\nHost: stash</pre>", KindUnavailable, []string{"ApiKey:"}, []string{testKey}},
		{"key param", 502, "text/plain", "", "bad gateway for /scene/1/stream?apikey=" + testKey + "&x=1", KindUnavailable, []string{"apikey=<redacted>"}, []string{testKey}},
		{"binary", 200, "application/octet-stream", "", "\x00\x01\xff\xfe\x1b[31mred\x1b[0m\r\n", KindUnavailable, []string{"red"}, []string{"\x00", "\x1b", "\r"}},
		{"long html", 200, "text/html", "", "<html>" + strings.Repeat("<p>lorem ipsum</p>", 10000) + "</html>", KindUnavailable, []string{"..."}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.ctype != "" {
				res.Header.Set("Content-Type", tc.ctype)
			}
			if tc.location != "" {
				res.Header.Set("Location", tc.location)
			}
			e := checkAPIAnswer(res, []byte(tc.body), testKey)
			if tc.kind == 0 {
				if e != nil {
					t.Fatalf("refused: %v", e)
				}
				return
			}
			if e == nil {
				t.Fatalf("accepted, want kind %d", tc.kind)
			}
			if e.Kind != tc.kind || e.Status != tc.status {
				t.Errorf("kind %d status %d, want kind %d status %d: %v", e.Kind, e.Status, tc.kind, tc.status, e)
			}
			for _, s := range tc.has {
				if !strings.Contains(e.Msg, s) {
					t.Errorf("message lacks %q: %s", s, e.Msg)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(e.Msg, s) {
					t.Errorf("message has %q: %q", s, e.Msg)
				}
			}
			if tc.kind != KindGraphQL && len(e.Msg) > 400 {
				t.Errorf("message is %d bytes long: %s", len(e.Msg), e.Msg)
			}
		})
	}
}

// TestTransport_Outcomes runs each way Stash (or what is in front of it) can
// answer through a real client and checks what the caller sees: the kind,
// the exit code, and that no secret is printed.
func TestTransport_Outcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		ctype  string
		body   string
		kind   Kind
		exit   int
	}{
		{"wrong key", 401, "text/plain; charset=utf-8", "Unauthorized\n", KindAuth, 77},
		{"forbidden", 403, "text/plain", "Stash is exposed to the public internet", KindAuth, 77},
		{"500", 500, "text/plain", "Internal Server Error", KindUnavailable, 69},
		{"502 proxy page", 502, "text/html", "<html><h1>502 Bad Gateway</h1>" + testKey + "</html>", KindUnavailable, 69},
		{"html", 200, "text/html", "<!doctype html><html><body>Stash</body></html>", KindUnavailable, 69},
		{"truncated", 200, "application/json", `{"data":{"jobQueue":[{"id":"1","status":"RUNN`, KindUnavailable, 69},
		{"not json", 200, "application/json", "upstream connect error", KindUnavailable, 69},
		{"422", 422, "application/json", `{"errors":[{"message":"Cannot query field \"x\" on type \"Query\"."}],"data":null}`, KindGraphQL, 69},
		{"resolver errors", 200, "application/json", `{"errors":[{"message":"one"},{"message":"two"}],"data":{"jobQueue":null}}`, KindGraphQL, 69},
		{"400 json without errors", 400, "application/json", `{"data":{"jobQueue":null}}`, KindProtocol, 69},
		{"null body", 200, "application/json", `null`, KindProtocol, 69},
		{"wrong shape", 200, "application/json", `{"data":{"jobQueue":{"id":"1"}}}`, KindProtocol, 69},
		{"bad time", 200, "application/json", `{"data":{"jobQueue":[{"id":"1","status":"READY","description":"x","addTime":"` + testKey + `"}]}}`, KindProtocol, 69},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, func(w http.ResponseWriter, _ *http.Request, _ gqlBody) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			withUser := strings.Replace(s.URL, "http://", "http://admin:hunter2@", 1)
			c := newTestClient(t, withUser)
			jobs, err := c.JobQueue(context.Background())
			if err == nil {
				t.Fatalf("JobQueue = %v, nil; want an error", jobs)
			}
			e := wantKind(t, err, tc.kind)
			if e.ExitCode() != tc.exit {
				t.Errorf("exit code %d, want %d", e.ExitCode(), tc.exit)
			}
			if e.Op != "jobQueue" || e.Status != tc.status {
				t.Errorf("op %q status %d", e.Op, e.Status)
			}
			msg := err.Error()
			if tc.kind == KindUnavailable && !strings.Contains(msg, "stash unavailable at "+s.URL) {
				t.Errorf("error = %q, want it to say stash unavailable at %s", msg, s.URL)
			}
			noSecret(t, "error", msg, "hunter2", "admin")
			noSecret(t, "hint", e.Hint(), "hunter2", "admin")
			if tc.name == "resolver errors" && (!strings.Contains(msg, "one") || !strings.Contains(msg, "two")) {
				t.Errorf("error keeps only some messages: %s", msg)
			}
		})
	}
}

func TestTransport_ConnectionRefused(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.NotFoundHandler())
	base := s.URL
	s.Close()
	c := newTestClient(t, strings.Replace(base, "http://", "http://admin:hunter2@", 1)+"/?apikey="+testKey)
	_, err := c.FindJob(context.Background(), "1")
	e := wantKind(t, err, KindUnavailable)
	if e.ExitCode() != 69 {
		t.Errorf("exit code %d", e.ExitCode())
	}
	if !strings.Contains(err.Error(), "stash unavailable at "+base) {
		t.Errorf("error = %q, want it to say stash unavailable at %s", err, base)
	}
	noSecret(t, "error", err.Error(), "hunter2", "admin")
	if errors.Is(err, ErrJobNotFound) {
		t.Errorf("connection refused reads as a forgotten job")
	}

	_, err = c.Probe(context.Background(), ResWebp, "/scene/1/webp")
	wantKind(t, err, KindUnavailable)
	noSecret(t, "probe error", err.Error(), "hunter2", "admin")
}

// TestTransport_MaxBody: an answer over the cap is refused without reading
// it into memory.
func TestTransport_MaxBody(t *testing.T) {
	t.Parallel()
	const max = 1 << 10
	ok := []byte(`{"data":{"jobQueue":null}}`)
	padded := append(append([]byte{}, ok[:len(ok)-1]...), bytes.Repeat([]byte(" "), max-len(ok))...)
	padded = append(padded, '}')
	big := append(append([]byte{}, ok[:len(ok)-1]...), bytes.Repeat([]byte(" "), 64*max)...)
	big = append(big, '}')
	cases := []struct {
		name     string
		body     []byte
		length   int64
		ok       bool
		readUpTo int64
	}{
		{"at the cap", padded, int64(len(padded)), true, max},
		{"declared over the cap", big, int64(len(big)), false, 0},
		{"chunked over the cap", big, -1, false, max + 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var read int64
			c := memClient(t, memTransport{status: 200, body: tc.body, length: tc.length, read: &read},
				func(o *Options) { o.MaxBody = max })
			_, err := c.JobQueue(context.Background())
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				e := wantKind(t, err, KindProtocol)
				if !strings.Contains(e.Msg, "1024") {
					t.Errorf("message does not name the cap: %v", err)
				}
			}
			if read > tc.readUpTo {
				t.Errorf("read %d bytes of a %d-byte body, want at most %d", read, len(tc.body), tc.readUpTo)
			}
		})
	}
}

func TestError_Strings(t *testing.T) {
	t.Parallel()
	for k, exit := range map[Kind]int{KindUnavailable: 69, KindAuth: 77, KindGraphQL: 69, KindProtocol: 69} {
		e := &Error{Op: "findJob", URL: "http://stash.lan:9999/graphql", Kind: k, Msg: "m", Err: errors.New("cause")}
		if e.ExitCode() != exit {
			t.Errorf("kind %d: exit %d, want %d", k, e.ExitCode(), exit)
		}
		if s := e.Error(); !strings.Contains(s, "http://stash.lan:9999/graphql (findJob): m: cause") || s != strings.ToLower(s[:1])+s[1:] {
			t.Errorf("kind %d: %q", k, s)
		}
		if e.Hint() == "" {
			t.Errorf("kind %d: no hint", k)
		}
		if !IsKind(fmt.Errorf("wrapped: %w", e), k) || IsKind(e, k+10) || IsKind(errors.New("x"), k) {
			t.Errorf("kind %d: IsKind wrong", k)
		}
	}
	if got := (&Error{Kind: KindAuth, URL: "u"}).Error(); !strings.HasPrefix(got, "stash rejected the API key at u") {
		t.Errorf("auth error = %q", got)
	}
}
