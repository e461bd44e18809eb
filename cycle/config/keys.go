package config

import (
	"strconv"
	"strings"
)

// kind is the TOML shape a key must have.
type kind int

const (
	kindTable kind = iota
	kindInt
	kindString
	kindSecret
	kindBool
	kindToggle // *bool: unset means "Stash's default"
)

// keyDef describes one key of the file. The table below is the single list
// that unknown-key detection, type checking, Sources and Entries share; a
// test checks it against Config's toml tags so the two cannot drift.
type keyDef struct {
	name  string // dotted
	kind  kind
	env   string // environment variable that overrides it, if any
	flag  string // command-line flag that overrides it, if any
	field func(c *Config) any
	// sample is the value hints show, as TOML, when the default ("") would
	// not show the form.
	sample string
}

var keyDefs = []keyDef{
	{name: "heartbeat_interval", kind: kindInt, field: func(c *Config) any { return &c.HeartbeatInterval }},
	{name: "job_interval_seconds", kind: kindInt, field: func(c *Config) any { return &c.JobIntervalSeconds }},
	{name: "poll_interval", kind: kindInt, field: func(c *Config) any { return &c.PollInterval }},
	{name: "lock_file", kind: kindString, field: func(c *Config) any { return &c.LockFile }},
	{name: "metrics_file", kind: kindString, field: func(c *Config) any { return &c.MetricsFile }},

	{name: "stash", kind: kindTable},
	{name: "stash.url", kind: kindString, env: envStashURL, flag: "--stash-url", field: func(c *Config) any { return &c.Stash.URL }},
	{name: "stash.api_key", kind: kindSecret, env: envStashAPIKey, field: func(c *Config) any { return &c.Stash.APIKey }},
	{name: "stash.api_key_file", kind: kindString, field: func(c *Config) any { return &c.Stash.APIKeyFile }},
	{name: "stash.timeout", kind: kindInt, field: func(c *Config) any { return &c.Stash.Timeout }},
	{name: "stash.unavailable_timeout", kind: kindInt, field: func(c *Config) any { return &c.Stash.UnavailableTimeout }},

	{name: "database", kind: kindTable},
	{name: "database.url", kind: kindString, env: envDatabaseURL, flag: "--database-url", field: func(c *Config) any { return &c.Database.URL }},
	{name: "database.schema", kind: kindString, field: func(c *Config) any { return &c.Database.Schema }},

	{name: "generate", kind: kindTable},
	{name: "generate.covers", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Covers }},
	{name: "generate.sprites", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Sprites }},
	{name: "generate.previews", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Previews }},
	{name: "generate.image_previews", kind: kindToggle, field: func(c *Config) any { return &c.Generate.ImagePreviews }},
	{name: "generate.markers", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Markers }},
	{name: "generate.marker_image_previews", kind: kindToggle, field: func(c *Config) any { return &c.Generate.MarkerImagePreviews }},
	{name: "generate.marker_screenshots", kind: kindToggle, field: func(c *Config) any { return &c.Generate.MarkerScreenshots }},
	{name: "generate.phashes", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Phashes }},
	{name: "generate.transcodes", kind: kindToggle, field: func(c *Config) any { return &c.Generate.Transcodes }},
	{name: "generate.interactive_heatmaps_speeds", kind: kindToggle, field: func(c *Config) any { return &c.Generate.InteractiveHeatmapsSpeeds }},
	{name: "generate.batch_size", kind: kindInt, field: func(c *Config) any { return &c.Generate.BatchSize }},
	{name: "generate.max_attempts", kind: kindInt, field: func(c *Config) any { return &c.Generate.MaxAttempts }},
	{name: "generate.window", kind: kindString, sample: `"01:00-07:00"`, field: func(c *Config) any { return &c.Generate.Window }},
	{name: "generate.free_space_path", kind: kindString, sample: `"/srv/stash/generated"`, field: func(c *Config) any { return &c.Generate.FreeSpacePath }},
	{name: "generate.min_free_space", kind: kindString, sample: `"50GiB"`, field: func(c *Config) any { return &c.Generate.MinFreeSpace }},

	{name: "check", kind: kindTable},
	{name: "check.concurrency", kind: kindInt, field: func(c *Config) any { return &c.Check.Concurrency }},
	{name: "check.reverify_after", kind: kindInt, field: func(c *Config) any { return &c.Check.ReverifyAfter }},

	{name: "notify", kind: kindTable},
	{name: "notify.ping_url", kind: kindString, field: func(c *Config) any { return &c.Notify.PingURL }},
	{name: "notify.ping_on_skip", kind: kindBool, field: func(c *Config) any { return &c.Notify.PingOnSkip }},
}

// keyLogLevel is the Sources key for the flag-only log level.
const keyLogLevel = "log_level"

var keyIndex = func() map[string]*keyDef {
	m := make(map[string]*keyDef, len(keyDefs))
	for i := range keyDefs {
		m[keyDefs[i].name] = &keyDefs[i]
	}
	return m
}()

// tomlType is the name MetaData.Type reports for a well-typed value.
func (k kind) tomlType() string {
	switch k {
	case kindTable:
		return "Hash"
	case kindInt:
		return "Integer"
	case kindBool, kindToggle:
		return "Bool"
	default:
		return "String"
	}
}

// describe says what a key of this kind must be, for "must be ..." messages.
func (k kind) describe() string {
	switch k {
	case kindTable:
		return "a table"
	case kindInt:
		return "a whole number"
	case kindBool, kindToggle:
		return "true or false"
	default:
		return "a quoted string"
	}
}

// tomlTypeName turns MetaData.Type's names into words for messages.
func tomlTypeName(t string) string {
	switch t {
	case "Integer":
		return "a whole number"
	case "Float":
		return "a decimal number"
	case "Datetime":
		return "a date/time"
	case "String":
		return "a string"
	case "Bool":
		return "a boolean"
	case "Array":
		return "an array"
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	}
	return "a " + strings.ToLower(t)
}

// section returns the table part of a dotted key ("" at top level).
func section(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// leaf returns the last part of a dotted key.
func leaf(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// example is a value to put in a hint: the key's sample, else the
// built-in default, as TOML.
func example(def *keyDef) string {
	if def.sample != "" {
		return leaf(def.name) + " = " + def.sample
	}
	d := Default()
	v := entryValue(def, &d)
	switch def.kind {
	case kindString, kindSecret:
		return leaf(def.name) + " = " + strconv.Quote(v)
	case kindToggle:
		return leaf(def.name) + " = true"
	}
	return leaf(def.name) + " = " + v
}

// sectionKeys lists the keys of one table, for "known keys are" hints.
func sectionKeys(sec string) []string {
	var out []string
	for _, d := range keyDefs {
		if section(d.name) == sec {
			out = append(out, leaf(d.name))
		}
	}
	return out
}

// suggest returns the known key closest to an unknown one, or "".
func suggest(unknown string) string {
	lower := strings.ToLower(unknown)
	// The right name in the wrong table: [stash] batch_size = 500.
	var moved []string
	for _, d := range keyDefs {
		if d.kind != kindTable && leaf(d.name) == leaf(lower) && d.name != lower {
			moved = append(moved, d.name)
		}
	}
	if len(moved) > 0 && len(moved) <= 2 {
		return strings.Join(moved, " or ")
	}
	best, bestDist := "", -1
	for _, d := range keyDefs {
		dist := editDistance(lower, d.name)
		if bestDist < 0 || dist < bestDist {
			best, bestDist = d.name, dist
		}
	}
	if bestDist <= max(2, len(best)/4) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes: key
// names are ASCII, and anything else is far from every key anyway.
func editDistance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
