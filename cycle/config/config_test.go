package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const exampleFile = "../../contrib/stashgen.example.toml"

// tomlKeys lists Config's dotted toml keys (tables too) in field order.
func tomlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if f.Anonymous && tag == "" { // embedded: its keys are the table's own
			keys = append(keys, tomlKeys(f.Type, prefix)...)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + tag
		keys = append(keys, name)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, tomlKeys(f.Type, name+".")...)
		}
	}
	return keys
}

func TestKeyDefs_MatchConfig(t *testing.T) {
	t.Parallel()
	// Same keys, same order: Entries and the example file follow it.
	var defs []string
	for _, d := range keyDefs {
		defs = append(defs, d.name)
	}
	fields := tomlKeys(reflect.TypeOf(Config{}), "")
	if strings.Join(defs, " ") != strings.Join(fields, " ") {
		t.Fatalf("keyDefs and Config's toml tags differ:\n keyDefs: %v\n  Config: %v", defs, fields)
	}
	// Each accessor points at the field its name says.
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for _, d := range keyDefs {
		if d.kind == kindTable {
			continue
		}
		fv := v
		for _, part := range strings.Split(d.name, ".") {
			fv = fieldByTag(t, fv, part)
		}
		if got := reflect.ValueOf(d.field(&c)).Pointer(); got != fv.Addr().Pointer() {
			t.Errorf("keyDefs[%s].field points at the wrong field", d.name)
		}
	}
}

func fieldByTag(t *testing.T, v reflect.Value, tag string) reflect.Value {
	t.Helper()
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Tag.Get("toml") == tag {
			return v.Field(i)
		}
		if f.Anonymous && f.Tag.Get("toml") == "" {
			if inner := fieldIn(v.Field(i), tag); inner.IsValid() {
				return inner
			}
		}
	}
	t.Fatalf("no field tagged %q", tag)
	return reflect.Value{}
}

// fieldIn finds the field tagged tag in struct v, or the zero Value.
func fieldIn(v reflect.Value, tag string) reflect.Value {
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") == tag {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func TestExampleFile_LoadsToDefaults(t *testing.T) {
	t.Parallel()
	cfg, src, err := Load(Options{Path: exampleFile, Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != exampleFile {
		t.Errorf("File = %q", cfg.File)
	}
	cfg.File = ""
	if want := Default(); !reflect.DeepEqual(*cfg, want) {
		t.Errorf("the example's values differ from Default():\n got %+v\nwant %+v", *cfg, want)
	}
	if (*src)["poll_interval"] != SourceFile {
		t.Errorf("poll_interval source %s, want file", (*src)["poll_interval"])
	}
	if w := Permissions(exampleFile); w != "" {
		t.Errorf("the example holds a secret: %s", w)
	}
}

func TestExampleFile_MentionsEveryKey(t *testing.T) {
	t.Parallel()
	f, err := os.Open(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := regexp.MustCompile(`^\[([a-z_]+)\]\s*(#.*)?$`)
	assign := regexp.MustCompile(`^#?\s*([a-z_]+)\s*=`)
	seen := map[string]bool{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := header.FindStringSubmatch(line); m != nil {
			sec = m[1]
			seen[sec] = true
			continue
		}
		if m := assign.FindStringSubmatch(line); m != nil {
			name := m[1]
			if sec != "" {
				name = sec + "." + name
			}
			seen[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range tomlKeys(reflect.TypeOf(Config{}), "") {
		if !seen[k] {
			t.Errorf("%s does not mention %s", exampleFile, k)
		}
	}
}

func TestDurations(t *testing.T) {
	t.Parallel()
	c := Default()
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"heartbeat", c.HeartbeatEvery(), 30 * time.Second},
		{"poll", c.PollEvery(), 30 * time.Second},
		{"job", c.JobInterval(), time.Hour},
		{"request", c.Stash.RequestTimeout(), 30 * time.Second},
		{"unavailable", c.Stash.UnavailableFor(), 5 * time.Minute},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if got := c.Stash.GraphQLURL(); got != "http://localhost:9999/graphql" {
		t.Errorf("GraphQLURL() = %q", got)
	}
	c.Stash.URL = "https://stash.example/media/"
	if got := c.Stash.GraphQLURL(); got != "https://stash.example/media/graphql" {
		t.Errorf("GraphQLURL() = %q", got)
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	for lvl, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "": "INFO"} {
		c := Config{LogLevel: lvl}
		if got := c.Level().String(); got != want {
			t.Errorf("Level(%q) = %s, want %s", lvl, got, want)
		}
	}
}
