package stash

import "strings"

// Toggles are Stash's generate options: what metadataGenerate builds. They
// are the one set of switches stashgen passes around. The config file's
// [generate] table decodes into them (toml tags), Stash's own defaults
// (configuration.defaults.generate) decode into them (json tags), and the
// input of metadataGenerate embeds them. A nil field is unset: a later
// layer decides (see ResolveToggles).
type Toggles struct {
	Covers                    *bool `json:"covers" toml:"covers"`
	Sprites                   *bool `json:"sprites" toml:"sprites"`
	Previews                  *bool `json:"previews" toml:"previews"`
	ImagePreviews             *bool `json:"imagePreviews" toml:"image_previews"`
	Markers                   *bool `json:"markers" toml:"markers"`
	MarkerImagePreviews       *bool `json:"markerImagePreviews" toml:"marker_image_previews"`
	MarkerScreenshots         *bool `json:"markerScreenshots" toml:"marker_screenshots"`
	Phashes                   *bool `json:"phashes" toml:"phashes"`
	Transcodes                *bool `json:"transcodes" toml:"transcodes"`
	InteractiveHeatmapsSpeeds *bool `json:"interactiveHeatmapsSpeeds" toml:"interactive_heatmaps_speeds"`
}

// builtinToggles decide a toggle that neither the config file nor Stash's
// own settings give: the one defaults table.
var builtinToggles = Toggles{
	Covers: Bool(true), Sprites: Bool(true), Previews: Bool(true), ImagePreviews: Bool(false),
	Markers: Bool(true), MarkerImagePreviews: Bool(false), MarkerScreenshots: Bool(true),
	Phashes: Bool(true), Transcodes: Bool(false), InteractiveHeatmapsSpeeds: Bool(false),
}

// Bool returns a pointer to v, for a toggle that is set.
func Bool(v bool) *bool { return &v }

// Toggle is one field of Toggles.
type Toggle struct {
	Name  string // as in the config file: image_previews
	Field string // as in Stash's GraphQL: imagePreviews
	Value *bool
}

// List is every toggle in the config file's order.
func (t Toggles) List() []Toggle {
	return []Toggle{
		{"covers", "covers", t.Covers}, {"sprites", "sprites", t.Sprites}, {"previews", "previews", t.Previews},
		{"image_previews", "imagePreviews", t.ImagePreviews}, {"markers", "markers", t.Markers},
		{"marker_image_previews", "markerImagePreviews", t.MarkerImagePreviews},
		{"marker_screenshots", "markerScreenshots", t.MarkerScreenshots},
		{"phashes", "phashes", t.Phashes}, {"transcodes", "transcodes", t.Transcodes},
		{"interactive_heatmaps_speeds", "interactiveHeatmapsSpeeds", t.InteractiveHeatmapsSpeeds},
	}
}

// fields are pointers to every field, in List's order.
func (t *Toggles) fields() []**bool {
	return []**bool{&t.Covers, &t.Sprites, &t.Previews, &t.ImagePreviews, &t.Markers,
		&t.MarkerImagePreviews, &t.MarkerScreenshots, &t.Phashes, &t.Transcodes, &t.InteractiveHeatmapsSpeeds}
}

// Complete reports whether every toggle is set, so that nothing is left
// for a lower layer (Stash's defaults need not be asked for).
func (t Toggles) Complete() bool {
	for _, f := range t.fields() {
		if *f == nil {
			return false
		}
	}
	return true
}

// Over returns t with every unset toggle taken from lower.
func (t Toggles) Over(lower Toggles) Toggles {
	dst, src := t.fields(), lower.fields()
	for i := range dst {
		if *dst[i] == nil && *src[i] != nil {
			*dst[i] = Bool(**src[i])
		}
	}
	return t
}

// ResolveToggles is the one resolution of the effective toggles: the
// config file first, then what the user chose in Stash's settings, then
// the built-in defaults. Every toggle of the result is set.
func ResolveToggles(config, fromStash Toggles) Toggles {
	return config.Over(fromStash).Over(builtinToggles)
}

// on is a toggle's value; unset is off.
func on(b *bool) bool { return b != nil && *b }

// Wanted lists the resources these toggles ask for that stashgen can
// verify, in the order a full check probes them. Stash builds the webp
// only with the video preview and marker files only with markers, so
// those follow their parent. Transcodes and heatmaps have no reliable
// probe and are not listed.
func (t Toggles) Wanted() Resources {
	var rs Resources
	add := func(ok bool, r Resource) {
		if ok {
			rs = append(rs, r)
		}
	}
	add(on(t.Covers), ResCover)
	add(on(t.Phashes), ResPhash)
	add(on(t.Previews), ResPreview)
	add(on(t.Previews) && on(t.ImagePreviews), ResWebp)
	add(on(t.Sprites), ResSprite)
	add(on(t.Sprites), ResVTT)
	add(on(t.Markers), ResMarkerStream)
	add(on(t.Markers) && on(t.MarkerImagePreviews), ResMarkerPreview)
	add(on(t.Markers) && on(t.MarkerScreenshots), ResMarkerScreenshot)
	return rs
}

// WebpWithoutPreview reports the combination Stash cannot honour: it
// builds the animated webp only together with the video preview.
func (t Toggles) WebpWithoutPreview() bool { return on(t.ImagePreviews) && !on(t.Previews) }

// Resources is a set of resource kinds, in probe order.
type Resources []Resource

// Has reports whether r is in the set.
func (rs Resources) Has(r Resource) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// SceneFiles counts the kinds in the set that are files of a scene, one
// file request each to probe (covers and phashes are asked for with
// GraphQL, marker files are per marker).
func (rs Resources) SceneFiles() int {
	n := 0
	for _, r := range rs {
		switch r {
		case ResPreview, ResWebp, ResSprite, ResVTT:
			n++
		}
	}
	return n
}

// Strings is the set as plain strings, for the database and logs.
func (rs Resources) Strings() []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// String joins the set with commas.
func (rs Resources) String() string { return strings.Join(rs.Strings(), ",") }
