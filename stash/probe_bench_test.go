package stash_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// BenchmarkProbe measures the client's Probe alone: 10,000 scenes × 4 files
// (40,000 one-byte GETs per op) fetched by a pool of workers against the
// fake Stash over loopback, with as many keep-alive connections as
// workers, as main configures it. It is the ceiling for
// cycle.BenchmarkCheckScenes, which adds the database and the is_missing
// queries.
//
//	go test ./stash -run '^$' -bench 'BenchmarkProbe' -count 5
func BenchmarkProbe(b *testing.B) {
	const scenes = 10_000
	fake := stashtest.New(b)
	res := stashtest.SceneResources(stashtest.ResourcePreview, stashtest.ResourceWebP,
		stashtest.ResourceSprite, stashtest.ResourceVTT)
	type probe struct {
		res  stash.Resource
		path string
	}
	var probes []probe
	for range scenes {
		id := fake.AddScene(res)
		h := fake.SceneOSHash(id)
		probes = append(probes,
			probe{stash.ResPreview, "/scene/" + id + "/preview"},
			probe{stash.ResWebp, "/scene/" + id + "/webp"},
			probe{stash.ResSprite, "/scene/" + h + "_sprite.jpg"},
			probe{stash.ResVTT, "/scene/" + h + "_thumbs.vtt"})
	}
	base, _ := url.Parse(fake.URL())
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("files=%d/concurrency=%d", len(probes), conc), func(b *testing.B) {
			c, err := stash.New(stash.Options{URL: fake.URL(), Timeout: 30 * time.Second, Conns: conc})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				fake.ResetLog()
				b.StartTimer()
				work := make(chan probe)
				var wg sync.WaitGroup
				var mu sync.Mutex
				var firstErr error
				for range conc {
					wg.Go(func() {
						for p := range work {
							r, err := c.Probe(ctx, p.res, base.JoinPath(p.path).String())
							if err == nil && r != stash.Present {
								err = fmt.Errorf("%s: %v", p.path, r)
							}
							if err != nil {
								mu.Lock()
								firstErr = err
								mu.Unlock()
							}
						}
					})
				}
				for _, p := range probes {
					work <- p
				}
				close(work)
				wg.Wait()
				if firstErr != nil {
					b.Fatal(firstErr)
				}
			}
			b.ReportMetric(float64(len(probes))*float64(b.N)/b.Elapsed().Seconds(), "probes/s")
		})
	}
}
