package stash

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// logBatchMsg is a loggingSubscribe message of n entries at level, as
// gqlgen writes it: about 170 bytes an entry, like Stash's SQL traces.
func logBatchMsg(n int, level string) []byte {
	var b strings.Builder
	b.WriteString(`{"payload":{"data":{"loggingSubscribe":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"time":"2024-03-10T12:00:00.%09d+02:00","level":"%s","message":"[sqlite] query: SELECT scenes.id, scenes.title FROM scenes WHERE scenes.id = ? args: [%d]"}`,
			i+1, level, i)
	}
	b.WriteString(`]}},"id":"2","type":"next"}`)
	return []byte(b.String())
}

const benchBatch = 100

// BenchmarkSubscribeLogs measures what reading Stash's log costs per batch
// of 100 entries (about 17 kB): decoding and filtering alone ("decode"),
// for a Stash at Trace level whose entries are all dropped ("trace") and
// for entries that are all kept and handed over ("error"); and the whole
// path from a loopback websocket to Logs ("socket").
//
//	go test ./stash -run '^$' -bench 'BenchmarkSubscribeLogs' -benchmem -count 5
func BenchmarkSubscribeLogs(b *testing.B) {
	for _, level := range []string{"Trace", "Error"} {
		b.Run("decode/"+strings.ToLower(level), func(b *testing.B) {
			msg := logBatchMsg(benchBatch, level)
			s := &Subscription{
				c:       newTestClient(b, "http://stash.invalid:9999"),
				minRank: LogWarning.rank(),
				logs:    make(chan LogEntry, benchBatch),
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.wire.decode(msg); err != nil {
					b.Fatal(err)
				}
				if err := s.deliverLogs(); err != nil {
					b.Fatal(err)
				}
				for len(s.logs) > 0 {
					<-s.logs
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
		})
	}
	b.Run("socket/trace", func(b *testing.B) {
		msg := logBatchMsg(benchBatch, "Trace")
		end := `{"payload":{"data":{"loggingSubscribe":[{"time":"2024-03-10T12:00:01+02:00","level":"Error","message":"end"}]}},"id":"2","type":"next"}`
		start := make(chan struct{})
		url := wsStub(b, ProtoTransportWS, func(p *wsPeer) {
			p.ackAndConfirm(ProtoTransportWS)
			<-start
			for range b.N {
				if err := p.c.Write(context.Background(), websocket.MessageText, msg); err != nil {
					b.Error(err)
					return
				}
			}
			p.send(end)
			p.read()
		})
		c := newTestClient(b, url)
		sub, err := c.Subscribe(context.Background(), SubscribeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		b.ResetTimer()
		close(start)
		if e := <-sub.Logs(); e.Message != "end" {
			b.Fatalf("got %+v", e)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "entries/s")
		if d := sub.Dropped(); d.LogEntries != 0 {
			b.Errorf("dropped %+v", d)
		}
	})
}
