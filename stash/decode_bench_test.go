package stash

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// scenePageBody is a findScenes answer of n scenes as Stash sends it.
func scenePageBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"data":{"findScenes":{"count":100000,"scenes":[`)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		h := fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		fmt.Fprintf(&b, `{"id":"%d","created_at":"2024-03-10T12:00:00+02:00","updated_at":"2024-03-10T12:00:00+02:00",`+
			`"paths":{"preview":"http://127.0.0.1:9999/scene/%d/preview","webp":"http://127.0.0.1:9999/scene/%d/webp",`+
			`"vtt":"http://127.0.0.1:9999/scene/%s_thumbs.vtt","sprite":"http://127.0.0.1:9999/scene/%s_sprite.jpg"}}`, i, i, i, h, h)
	}
	b.WriteString(`]}}}`)
	return []byte(b.String())
}

// BenchmarkScenePage splits the client's cost of one page of 1,000 scenes
// (about 300 kB of JSON; a first sync of 100,000 scenes and 200,000 markers
// reads 300 such pages): the whole call with no network ("client"), the
// answer checks of apiTransport alone ("checks": json.Valid, then a full
// Unmarshal to look for "errors"), and the decoding machinebox/graphql
// does alone ("decode"), and the debug logging machinebox/graphql formats
// on every call even when its Log hook discards it ("unused-log": the
// variables, the query, the headers and the whole answer, through
// fmt.Sprintf).
//
//	go test ./stash -run '^$' -bench 'BenchmarkScenePage' -count 5
func BenchmarkScenePage(b *testing.B) {
	body := scenePageBody(1000)
	b.Run("client", func(b *testing.B) {
		c := memClient(b, memTransport{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}},
			body: body, length: int64(len(body))})
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			p, err := c.Scenes(context.Background(), SceneQuery{PerPage: 1000})
			if err != nil || len(p.Scenes) != 1000 {
				b.Fatalf("%d scenes, %v", len(p.Scenes), err)
			}
		}
	})
	b.Run("checks", func(b *testing.B) {
		res := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}}
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := checkAPIAnswer(res, body, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unused-log", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		vars := map[string]any{"filter": map[string]any{"page": 1, "per_page": 1000, "sort": "id", "direction": "ASC"}}
		hdr := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Accept": {"application/json; charset=utf-8"}}
		discard := func(string) {}
		for b.Loop() {
			buf := bytes.NewBuffer(body)
			discard(fmt.Sprintf(">> variables: %v", vars))
			discard(fmt.Sprintf(">> query: %s", qScenes))
			discard(fmt.Sprintf(">> headers: %v", hdr))
			discard(fmt.Sprintf("<< %s", buf.String()))
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var out struct {
				Data struct {
					FindScenes struct {
						Count  int     `json:"count"`
						Scenes []Scene `json:"scenes"`
					} `json:"findScenes"`
				} `json:"data"`
			}
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
