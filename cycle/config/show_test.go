package config

import (
	"os"
	"strings"
	"testing"
)

func TestEntries(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Stash.APIKey = Secret(testSecret)
	cfg.Stash.APIKeyFile = "/run/credentials/stashgen.service/key"
	cfg.Database.URL = "postgres://stashgen:hunter22@db:5432/stashgen"
	off := false
	cfg.Generate.Transcodes = &off
	cfg.Generate.Window = "22:00-06:00"
	cfg.Generate.FreeSpacePath = "/srv/stash/generated"
	cfg.Generate.MinFreeSpace = "10%"

	got := map[string]string{}
	var order []string
	for _, e := range cfg.Entries() {
		got[e.Key] = e.Value
		order = append(order, e.Key)
		if strings.Contains(e.Value, testSecret) || strings.Contains(e.Value, "hunter22") {
			t.Errorf("%s shows a secret: %s", e.Key, e.Value)
		}
	}
	want := map[string]string{
		"heartbeat_interval":        "30",
		"lock_file":                 "/run/lock/stashgen.lock",
		"metrics_file":              "",
		"stash.url":                 "http://localhost:9999",
		"stash.api_key":             "<redacted>",
		"stash.api_key_file":        "/run/credentials/stashgen.service/key",
		"database.url":              "postgres://stashgen:<redacted>@db:5432/stashgen",
		"generate.covers":           "(from Stash)",
		"generate.transcodes":       "false",
		"generate.batch_size":       "500",
		"notify.ping_on_skip":       "false",
		"stash.unavailable_timeout": "300",
		"generate.window":           "22:00-06:00",
		"generate.free_space_path":  "/srv/stash/generated",
		"generate.min_free_space":   "10%",
		"check.reverify_after":      "604800",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	wantOrder := []string{"heartbeat_interval", "job_interval_seconds", "poll_interval", "lock_file", "metrics_file",
		"stash.url", "stash.api_key", "stash.api_key_file", "stash.timeout", "stash.unavailable_timeout",
		"database.url", "database.schema",
		"generate.covers", "generate.sprites", "generate.previews", "generate.image_previews", "generate.markers",
		"generate.marker_image_previews", "generate.marker_screenshots", "generate.phashes", "generate.transcodes",
		"generate.interactive_heatmaps_speeds", "generate.batch_size", "generate.max_attempts",
		"generate.window", "generate.free_space_path", "generate.min_free_space",
		"check.concurrency", "check.reverify_after", "notify.ping_url", "notify.ping_on_skip"}
	if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
		t.Errorf("order:\n got %v\nwant %v", order, wantOrder)
	}

	var empty Config
	for _, e := range empty.Entries() {
		if e.Key == "stash.api_key" && e.Value != "" {
			t.Errorf("unset api key shows %q", e.Value)
		}
	}
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    []string // substrings; nil = no warning
	}{
		{"api key, world readable", "[stash]\napi_key = \"" + testSecret + "\"\n", 0o644,
			[]string{"is readable by other users (mode 0644)", "holds stash.api_key", "chmod 600 ", "api_key_file or STASHGEN_STASH_API_KEY"}},
		{"api key, group readable", "[stash]\napi_key = \"" + testSecret + "\"\n", 0o640,
			[]string{"(mode 0640)", "chmod 600"}},
		{"database password", "[database]\nurl = \"postgres://u:hunter22@db/x\"\n", 0o644,
			[]string{"holds a password in database.url", "STASHGEN_DATABASE_URL"}},
		{"dsn password", "[database]\nurl = \"host=db password=hunter22\"\n", 0o604,
			[]string{"holds a password in database.url"}},
		{"both", "[stash]\napi_key = \"k\"\n[database]\nurl = \"postgres://u:hunter22@db/x\"\n", 0o644,
			[]string{"holds stash.api_key and a password in database.url"}},
		{"private file", "[stash]\napi_key = \"" + testSecret + "\"\n", 0o600, nil},
		{"no secrets", "[stash]\napi_key_file = \"/etc/stashgen/key\"\n[database]\nurl = \"postgres://u@db/x\"\n", 0o644, nil},
		{"not toml", "[stash\n", 0o644, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "stashgen.toml", tt.content)
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got := Permissions(p)
			if tt.want == nil {
				if got != "" {
					t.Errorf("unexpected warning %q", got)
				}
				return
			}
			for _, w := range append(tt.want, p) {
				if !strings.Contains(got, w) {
					t.Errorf("warning %q does not contain %q", got, w)
				}
			}
			if strings.Contains(got, testSecret) || strings.Contains(got, "hunter22") || strings.Contains(got, "\n") {
				t.Errorf("warning %q shows a secret or spans lines", got)
			}
		})
	}
	if got := Permissions("/nonexistent/stashgen.toml"); got != "" {
		t.Errorf("missing file: %q", got)
	}
}
