package stashtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// client speaks raw HTTP to the fake, as the real client will.
type client struct {
	t   testing.TB
	s   *Server
	key string
}

func newClient(t testing.TB, s *Server) *client {
	return &client{t: t, s: s, key: s.APIKey()}
}

// response is a decoded GraphQL answer.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Data   map[string]any
	Errors []map[string]any
}

func (c *client) do(query string, vars map[string]any) response {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.s.URL()+"/graphql", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("ApiKey", c.key)
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) response {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	var env struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if json.Unmarshal(raw, &env) == nil {
		r.Data, r.Errors = env.Data, env.Errors
	}
	return r
}

// ok runs a query that must succeed without errors.
func (c *client) ok(query string, vars map[string]any) map[string]any {
	c.t.Helper()
	r := c.do(query, vars)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		c.t.Fatalf("query failed: status %d body %s", r.Status, r.Raw)
	}
	return r.Data
}

// get fetches a URL with the client's key.
func (c *client) get(method, url string, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("ApiKey", c.key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// dig walks decoded JSON: dig(v, "findJob", "status").
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

const findJobQ = `query($id: ID!) { findJob(input: {id: $id}) { id status description progress addTime startTime endTime error subTasks } }`

func (c *client) findJob(id string) map[string]any {
	c.t.Helper()
	j, _ := c.ok(findJobQ, map[string]any{"id": id})["findJob"].(map[string]any)
	return j
}

const generateQ = `mutation($in: GenerateMetadataInput!) { metadataGenerate(input: $in) }`

func (c *client) generate(in map[string]any) string {
	c.t.Helper()
	return str(c.ok(generateQ, map[string]any{"in": in})["metadataGenerate"])
}
