// Command fakestash serves the fake Stash of stash/stashtest as a process of
// its own, with a large library, so that stashgen can be measured as cron
// runs it: a separate binary whose wall time, RSS and requests are its own.
//
// It prints two lines on stdout and serves until killed:
//
//	stash_url=http://127.0.0.1:PORT
//	debug_url=http://127.0.0.1:PORT
//
// The debug server counts what stashgen asked (GET /counts), forgets it
// (POST /reset), and changes the library between runs (POST /touch?n=10,
// POST /scan, POST /drain). The fake's clock follows the real one, so
// stashgen's sync cursors move on as they do against a real Stash.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stashgen/stashgen/stash/stashtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "fakestash: error: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	scenes, markers, pending int
	generated                bool
	scenesPerTick, scanTicks int
	apiKey, debugAddr        string
	age                      time.Duration
}

func run() error {
	var o options
	flag.IntVar(&o.scenes, "scenes", 100_000, "scenes in the library")
	flag.IntVar(&o.markers, "markers", 200_000, "markers, spread round-robin over the scenes")
	flag.BoolVar(&o.generated, "generated", true, "every scene and marker has all its generated files")
	flag.IntVar(&o.pending, "pending", 0, "extra scenes with no generated file at all")
	flag.IntVar(&o.scenesPerTick, "scenes-per-tick", 0, "scenes a generate job does per findJob poll (0 = all at once)")
	flag.IntVar(&o.scanTicks, "scan-ticks", 1_000_000, "findJob polls a scan takes; large keeps Stash busy")
	flag.StringVar(&o.apiKey, "api-key", "", "API key the fake demands (\"\" = none)")
	flag.StringVar(&o.debugAddr, "debug", "127.0.0.1:0", "address of the debug server")
	flag.DurationVar(&o.age, "age", time.Hour, "how long ago the library was created")
	flag.Parse()

	s, stop := build(o)
	defer stop()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	// Follow the real clock: Stash's updated_at and Date header move on.
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.SetNow(now)
			}
		}
	}()

	ln, err := net.Listen("tcp", o.debugAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.debugAddr, err)
	}
	dbg := &http.Server{Handler: debugMux(s, o), ReadHeaderTimeout: time.Minute}
	go func() { _ = dbg.Serve(ln) }()
	defer dbg.Close()

	fmt.Printf("stash_url=%s\ndebug_url=http://%s\n", s.URL(), ln.Addr())
	<-ctx.Done()
	return nil
}

var (
	sceneRes  = []stashtest.Resource{stashtest.ResourceCover, stashtest.ResourcePhash, stashtest.ResourcePreview, stashtest.ResourceWebP, stashtest.ResourceSprite, stashtest.ResourceVTT}
	markerRes = []stashtest.Resource{stashtest.ResourceMarkerStream, stashtest.ResourceMarkerPreview, stashtest.ResourceMarkerScreenshot}
)

func build(o options) (*stashtest.Server, func()) {
	opts := []stashtest.Option{
		stashtest.WithClock(time.Now().Add(-o.age)),
		stashtest.WithScenesPerTick(o.scenesPerTick),
		stashtest.WithScanTicks(o.scanTicks),
	}
	if o.apiKey != "" {
		opts = append(opts, stashtest.WithAPIKey(o.apiKey))
	}
	s, stop := stashtest.NewServer(opts...)
	var sopts []stashtest.SceneOption
	var mopts []stashtest.MarkerOption
	if o.generated {
		sopts = append(sopts, stashtest.SceneResources(sceneRes...))
		mopts = append(mopts, stashtest.MarkerResources(markerRes...))
	}
	ids := make([]string, o.scenes)
	for i := range ids {
		ids[i] = s.AddScene(sopts...)
	}
	for i := range o.markers {
		s.AddMarker(ids[i%len(ids)], mopts...)
	}
	if o.pending > 0 {
		s.AddScenes(o.pending)
	}
	return s, stop
}

// counts is what GET /counts answers.
type counts struct {
	GraphQL      int            `json:"graphql"`       // GraphQL HTTP requests
	Files        int            `json:"files"`         // file (probe) HTTP requests
	Requests     int            `json:"requests"`      // both
	Fields       map[string]int `json:"fields"`        // top-level fields asked, aliases counted
	Stops        int            `json:"stops"`         // stopJob calls executed
	FileStatuses map[string]int `json:"file_statuses"` // probe answers by HTTP status
}

func debugMux(s *stashtest.Server, o options) *http.ServeMux {
	var mu sync.Mutex // one change at a time
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
		calls, files := s.Calls(), s.FileRequests()
		c := counts{GraphQL: len(calls), Files: len(files), Requests: len(calls) + len(files),
			Fields: map[string]int{}, Stops: len(s.StopCalls()), FileStatuses: map[string]int{}}
		for _, call := range calls {
			for _, f := range call.Fields {
				c.Fields[f]++
			}
		}
		for _, f := range files {
			c.FileStatuses[strconv.Itoa(f.Status)]++
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetLog()
		fmt.Fprintln(w, "ok")
	})
	// touch edits n scenes, as a user would in Stash's UI: their
	// updated_at becomes now.
	mux.HandleFunc("POST /touch", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > o.scenes {
			http.Error(w, "want n=0..scenes", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		s.SetNow(time.Now())
		for i := range n {
			s.TouchScene(strconv.Itoa(1 + i*(o.scenes/max(n, 1))))
		}
		fmt.Fprintln(w, "ok")
	})
	// scan queues a scan, as Stash's UI does; with the default -scan-ticks
	// it stays RUNNING (Stash busy) until /drain.
	mux.HandleFunc("POST /scan", func(w http.ResponseWriter, _ *http.Request) {
		body := `{"query":"mutation { metadataScan(input: {}) }"}`
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if o.apiKey != "" {
			req.Header.Set("ApiKey", o.apiKey)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		res.Body.Close()
		fmt.Fprintln(w, res.Status)
	})
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, _ *http.Request) {
		s.DrainJobs()
		fmt.Fprintln(w, "ok")
	})
	return mux
}
