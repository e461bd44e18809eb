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
	"github.com/stashgen/stashgen/stash"
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

// Turning a resource on in Stash's defaults sends exactly the scenes not
// yet verified for it: not those whose last check already covered it (an
// earlier config wanted it), nor one first checked after the change.
func TestToggles_TurnedOnInStashDefaultsSparesScenesVerifiedForIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	with := append(slices.Clone(all), stashtest.ResourceWebP)
	e.runner.Settings.Toggles.ImagePreviews = stash.Bool(true)
	covered := []string{e.fake.AddScene(stashtest.SceneResources(with...)), e.fake.AddScene(stashtest.SceneResources(with...))}
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	// The config stops asking for webps; scenes checked now are verified
	// without one.
	e.runner.Settings.Toggles.ImagePreviews = nil
	e.fake.Advance(5 * time.Second)
	lack := e.generatedScenes(3)
	e.wantResult(e.once(context.Background()), db.OutcomeNothingToDo, cycle.ExitOK)
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated AND 'webp' = ANY(checked_for)`); n != 2 {
		t.Fatalf("scenes verified for the webp before the change = %d, want 2", n)
	}
	e.fake.Advance(5 * time.Second)
	e.fake.ResetLog()

	e.fake.SetGenerateDefaults(map[string]any{"imagePreviews": true})
	later := e.fake.AddScene(stashtest.SceneResources(with...)) // first checked with webp wanted
	e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

	if got := e.sceneIDsSent(); !slices.Equal(got, lack) {
		t.Fatalf("scenes sent = %v, want exactly those never verified for the webp %v (not %v nor %s)", got, lack, covered, later)
	}
	if got := e.probedScenes(covered); len(got) != 0 {
		t.Fatalf("scenes already verified for the webp were probed again: %v", got)
	}
	if got := e.probedScenes([]string{later}); len(got) != 1 {
		t.Fatalf("the scene added after the change was not checked")
	}
	if n := e.queryInt(`SELECT count(*) FROM stashgen.scenes WHERE generated AND 'webp' = ANY(checked_for)`); n != 6 {
		t.Fatalf("scenes verified for the webp = %d, want all 6", n)
	}
	for _, id := range lack {
		if !e.fake.HasResource(id, stashtest.ResourceWebP) {
			t.Errorf("scene %s has no webp", id)
		}
	}
}
