package stashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestFaults_Bodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   FaultKind
		status int
		check  func(t *testing.T, r response)
	}{
		{FaultStatus500, 500, func(t *testing.T, r response) {
			if json.Valid(r.Raw) {
				t.Errorf("500 body is JSON: %s", r.Raw)
			}
		}},
		{FaultHTML, 200, func(t *testing.T, r response) {
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !bytes.Contains(r.Raw, []byte("<html")) {
				t.Errorf("not HTML: %s", r.Raw)
			}
		}},
		{FaultTruncatedJSON, 200, func(t *testing.T, r response) {
			if json.Valid(r.Raw) || !bytes.HasPrefix(r.Raw, []byte(`{"data":`)) {
				t.Errorf("not truncated JSON: %s", r.Raw)
			}
		}},
		{FaultNotJSON, 200, func(t *testing.T, r response) {
			if json.Valid(r.Raw) || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("body %s", r.Raw)
			}
		}},
		{FaultGraphQLError, 200, func(t *testing.T, r response) {
			if len(r.Errors) != 1 || r.Errors[0]["message"] != "database is locked" || r.Data != nil || dig(r.Errors[0], "path", 0) != "version" {
				t.Errorf("body %s", r.Raw)
			}
		}},
		{FaultHugeBody, 200, func(t *testing.T, r response) {
			if len(r.Raw) != HugeBodySize || !json.Valid(r.Raw) {
				t.Errorf("huge body: %d bytes, valid %v", len(r.Raw), json.Valid(r.Raw))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			t.Parallel()
			s := New(t)
			s.InjectFault(Fault{Kind: tt.kind, Times: 1, Message: "database is locked"})
			c := newClient(t, s)
			r := c.do(`{ version { hash } }`, nil)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d", r.Status, tt.status)
			}
			tt.check(t, r)
			if r := c.do(`{ version { hash } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
				t.Fatalf("Times: 1 fired again: %d %s", r.Status, r.Raw)
			}
			if calls := s.Calls(); calls[0].Fault != tt.kind || calls[1].Fault != "" {
				t.Errorf("fault not logged: %+v", calls)
			}
		})
	}
}

func post(s *Server, ctx context.Context, query string) (*http.Response, error) {
	b, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestFaults_FieldFilterAndMutationNotRun(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.InjectFault(Fault{Kind: FaultStatus500, Field: "metadataGenerate"})
	c := newClient(t, s)
	if r := c.do(`{ version { hash } }`, nil); r.Status != 200 {
		t.Fatalf("other field hit: %d", r.Status)
	}
	for range 3 {
		if r := c.do(generateQ, map[string]any{"in": map[string]any{"covers": true}}); r.Status != 500 {
			t.Fatalf("status %d", r.Status)
		}
	}
	if len(s.Jobs()) != 0 || len(s.GenerateInputs()) != 0 {
		t.Fatal("mutation ran despite the fault")
	}
	if len(s.Mutations()) != 3 {
		t.Fatalf("attempts not logged: %d", len(s.Mutations()))
	}
	s.ClearFaults()
	if c.generate(map[string]any{"covers": true}) != "1" {
		t.Fatal("ClearFaults")
	}
}

func TestFaults_DropAfterExecute(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.InjectFault(Fault{Kind: FaultDrop, Field: "metadataGenerate", AfterExecute: true, Times: 1})
	_, err := post(s, context.Background(), `mutation { metadataGenerate(input: {covers: true}) }`)
	if err == nil {
		t.Fatal("dropped connection gave no error")
	}
	if js := s.Jobs(); len(js) != 1 {
		t.Fatalf("job should exist although the answer was lost: %+v", js)
	}
	if calls := s.Calls(); calls[0].Status != 0 || calls[0].Fault != FaultDrop {
		t.Errorf("call %+v", calls[0])
	}
}

func TestFaults_HangUntilClientGivesUp(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.InjectFault(Fault{Kind: FaultHang, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.HangStarted()
		cancel()
	}()
	_, err := post(s, ctx, `{ version { hash } }`)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context canceled", err)
	}
	if _, err := post(s, context.Background(), `{ version { hash } }`); err != nil {
		t.Fatalf("after hang: %v", err)
	}
}

func TestFaults_HangReleased(t *testing.T) {
	t.Parallel()
	s := New(t)
	s.InjectFault(Fault{Kind: FaultHang, Field: "findJob"})
	done := make(chan error, 1)
	go func() {
		resp, err := post(s, context.Background(), `{ findJob(input: {id: "1"}) { id } }`)
		if err == nil && resp.StatusCode != 200 {
			err = errors.New(resp.Status)
		}
		done <- err
	}()
	<-s.HangStarted()
	if s.Hanging() != 1 {
		t.Fatalf("Hanging = %d", s.Hanging())
	}
	s.ReleaseHung()
	if err := <-done; err != nil {
		t.Fatalf("released request: %v", err)
	}
}

func TestFaults_HangEndsOnClose(t *testing.T) {
	t.Parallel()
	s, closeFn := NewServer()
	s.InjectFault(Fault{Kind: FaultHang})
	done := make(chan error, 1)
	go func() {
		_, err := post(s, context.Background(), `{ version { hash } }`)
		done <- err
	}()
	<-s.HangStarted()
	closeFn()
	if err := <-done; err == nil {
		t.Fatal("request survived close")
	}
}

func TestFaults_Files(t *testing.T) {
	t.Parallel()
	s := New(t)
	a := s.AddScene(SceneResources(ResourcePreview))
	s.InjectFault(Fault{Kind: FaultStatus500, Path: "/scene/" + a + "/preview", Times: 2})
	c := newClient(t, s)
	if r := c.do(`{ version { hash } }`, nil); r.Status != 200 {
		t.Fatalf("file fault hit GraphQL: %d", r.Status)
	}
	for _, want := range []int{500, 500, 200} {
		if resp, _ := c.get(http.MethodGet, s.URL()+"/scene/"+a+"/preview", nil); resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
}

func TestDownUp(t *testing.T) {
	t.Parallel()
	s := New(t)
	id := s.AddScene()
	c := newClient(t, s)
	c.generate(map[string]any{"covers": true})
	// Keep-alive connection is open; Down must cut it as well.
	s.Down()
	s.Down() // idempotent
	for range 2 {
		if _, err := post(s, context.Background(), `{ version { hash } }`); err == nil {
			t.Fatal("request succeeded while down")
		}
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	d := c.ok(`{ findScene(id: "`+id+`") { id } jobQueue { id } }`, nil)
	if dig(d, "findScene", "id") != id || dig(d, "jobQueue", 0, "id") != "1" {
		t.Fatalf("state lost: %v", d)
	}
}
