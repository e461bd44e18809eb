package cycle_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// probedScenes lists the scenes (of ids) that had a file requested since
// the log was reset, in ids' order.
func (e *env) probedScenes(ids []string) []string {
	var out []string
	for _, id := range ids {
		byID, byHash := "/scene/"+id+"/", "/scene/"+e.fake.SceneOSHash(id)+"_"
		for _, f := range e.fake.FileRequests() {
			if strings.HasPrefix(f.Path, byID) || strings.HasPrefix(f.Path, byHash) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// The quiet probe asks first for the kind the stored checks found missing
// most. Here the pending scenes all lack their sprite, so a first check
// of new scenes that lack only their sprite asks for the sprite first and
// stops there: one request (one 404) a scene, not the preview's 200 too.
func TestQuiet_ProbesFirstTheKindMostOftenMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noSprite := stashtest.SceneResources(stashtest.ResourceCover, stashtest.ResourcePhash,
		stashtest.ResourcePreview, stashtest.ResourceVTT)
	for range 3 {
		e.fake.AddScene(noSprite)
	}
	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
	// Nothing stored yet: the preview first (200), then the sprite (404).
	if all, notFound := e.probes(); all != 6 || notFound != 3 {
		t.Fatalf("first check: %d requests, %d 404s; want the preview and the sprite of each of 3 scenes", all, notFound)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated AND missing = '{sprite}'`); n != 3 {
		t.Fatalf("scenes stored as missing their sprite = %d, want 3", n)
	}
	e.fake.Advance(5 * time.Second)
	e.fake.ResetLog()
	fresh := make([]string, 4)
	for i := range fresh {
		fresh[i] = e.fake.AddScene(noSprite)
	}

	e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)

	files := e.fake.FileRequests()
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	if len(files) != len(fresh) {
		t.Fatalf("requests = %v, want one a new scene (%d), the sprite's", paths, len(fresh))
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Path, "_sprite.jpg") || f.Status != http.StatusNotFound {
			t.Fatalf("requests = %v, want only sprites, each a 404", paths)
		}
	}
	if got := e.probedScenes(fresh); !slices.Equal(got, fresh) {
		t.Fatalf("scenes probed = %v, want each new one %v", got, fresh)
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE NOT generated AND missing = '{sprite}'`); n != 7 {
		t.Fatalf("scenes stored as missing their sprite = %d, want 7", n)
	}
}
