package stash

import (
	"encoding/json"
	"strings"
	"testing"
)

// show renders toggles as "name=value" (nil for unset), in List order.
func show(t Toggles) string {
	var parts []string
	for _, x := range t.List() {
		v := "nil"
		if x.Value != nil {
			v = map[bool]string{true: "true", false: "false"}[*x.Value]
		}
		parts = append(parts, x.Name+"="+v)
	}
	return strings.Join(parts, " ")
}

func TestResolveToggles_ConfigThenStashThenBuiltin(t *testing.T) {
	t.Parallel()
	yes, no := Bool(true), Bool(false)
	tests := []struct {
		name              string
		config, fromStash Toggles
		want              string
	}{
		{"built-ins alone", Toggles{}, Toggles{},
			"covers=true sprites=true previews=true image_previews=false markers=true marker_image_previews=false " +
				"marker_screenshots=true phashes=true transcodes=false interactive_heatmaps_speeds=false"},
		{"stash beats built-ins", Toggles{}, Toggles{Covers: no, ImagePreviews: yes},
			"covers=false sprites=true previews=true image_previews=true markers=true marker_image_previews=false " +
				"marker_screenshots=true phashes=true transcodes=false interactive_heatmaps_speeds=false"},
		{"config beats stash", Toggles{Covers: yes, Transcodes: yes}, Toggles{Covers: no, Sprites: no},
			"covers=true sprites=false previews=true image_previews=false markers=true marker_image_previews=false " +
				"marker_screenshots=true phashes=true transcodes=true interactive_heatmaps_speeds=false"},
	}
	for _, tt := range tests {
		got := ResolveToggles(tt.config, tt.fromStash)
		if s := show(got); s != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, s, tt.want)
		}
		if !got.Complete() {
			t.Errorf("%s: not every toggle is set", tt.name)
		}
	}
}

func TestToggles_OverLeavesItsInputsAlone(t *testing.T) {
	t.Parallel()
	cfg := Toggles{Covers: Bool(false)}
	lower := Toggles{Covers: Bool(true), Sprites: Bool(true)}
	got := cfg.Over(lower)
	*got.Sprites = false
	if cfg.Sprites != nil || !*lower.Sprites || *cfg.Covers || !*lower.Covers {
		t.Fatalf("Over changed an input: cfg %s, lower %s", show(cfg), show(lower))
	}
}

func TestToggles_Wanted(t *testing.T) {
	t.Parallel()
	yes, no := Bool(true), Bool(false)
	tests := []struct {
		t    Toggles
		want string
	}{
		{ResolveToggles(Toggles{}, Toggles{}), "cover,phash,preview,sprite,vtt,marker_stream,marker_screenshot"},
		// The webp comes only with the video preview; marker files only
		// with markers.
		{Toggles{ImagePreviews: yes, Previews: no, MarkerScreenshots: yes, Markers: no}, ""},
		{Toggles{ImagePreviews: yes, Previews: yes, Markers: yes, MarkerImagePreviews: yes}, "preview,webp,marker_stream,marker_preview"},
		{Toggles{Transcodes: yes, InteractiveHeatmapsSpeeds: yes}, ""},
	}
	for _, tt := range tests {
		if got := tt.t.Wanted().String(); got != tt.want {
			t.Errorf("Wanted(%s) = %q, want %q", show(tt.t), got, tt.want)
		}
	}
}

// An unset toggle goes to Stash as false, never null.
func TestGenerateInput_NeverSendsNull(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(GenerateInput{Toggles: Toggles{Previews: Bool(true)}, SceneIDs: []string{"4"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"covers":false,"sprites":false,"previews":true,"imagePreviews":false,"markers":false,` +
		`"markerImagePreviews":false,"markerScreenshots":false,"transcodes":false,"phashes":false,` +
		`"interactiveHeatmapsSpeeds":false,"sceneIDs":["4"],"overwrite":false}`
	if string(b) != want {
		t.Fatalf("input = %s\nwant    %s", b, want)
	}
}
