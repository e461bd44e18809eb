// Package config loads stashgen's settings: built-in defaults, then one TOML
// file, then the environment, then command-line flags. Decoding is strict (an
// unknown key is an error, because a typo that silently falls back to a
// default is worse than a run that refuses to start) and every error names the
// key, the value and the fix. Secrets (the Stash API key, the database
// password) are redacted on every path that prints them.
package config

import (
	"encoding/json"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/stash"
)

// Config is the effective configuration of one run. The toml tags are a
// public contract: renaming one breaks users' files.
type Config struct {
	// HeartbeatInterval is the number of seconds between heartbeat updates
	// while a run is active.
	HeartbeatInterval int `toml:"heartbeat_interval"`
	// JobIntervalSeconds is the interval cron or the systemd timer uses; a
	// run uses it to tell a stale heartbeat from a live one.
	JobIntervalSeconds int `toml:"job_interval_seconds"`
	// PollInterval is the number of seconds between job-status and scan
	// checks while monitoring.
	PollInterval int `toml:"poll_interval"`
	// LockFile is the flock(2) file that keeps two runs apart.
	LockFile string `toml:"lock_file"`
	// MetricsFile is an optional Prometheus textfile path; empty turns it off.
	MetricsFile string `toml:"metrics_file"`

	Stash    Stash    `toml:"stash"`
	Database Database `toml:"database"`
	Generate Generate `toml:"generate"`
	Check    Check    `toml:"check"`
	Notify   Notify   `toml:"notify"`

	// File is the configuration file that was read; empty when none was
	// found and the defaults (plus environment and flags) were used.
	File string `toml:"-"`
	// LogLevel is debug, info, warn or error. It is not a file key: it only
	// comes from the --log-level flag.
	LogLevel string `toml:"-"`
}

// Stash is how to reach the Stash server.
type Stash struct {
	// URL is the base URL; GraphQL lives at <url>/graphql.
	URL string `toml:"url"`
	// APIKey is sent as the ApiKey header; empty means no authentication.
	// After Load it holds the effective key, whichever source it came from.
	APIKey Secret `toml:"api_key"`
	// APIKeyFile names a file holding the key, an alternative to APIKey
	// that keeps the secret out of a world-readable config file. A relative
	// path is relative to the config file's directory.
	APIKeyFile string `toml:"api_key_file"`
	// Timeout is the number of seconds allowed per HTTP request.
	Timeout int `toml:"timeout"`
	// UnavailableTimeout is the number of seconds to keep retrying when Stash
	// goes away in the middle of a run.
	UnavailableTimeout int `toml:"unavailable_timeout"`
}

// Database is where stashgen keeps its state.
type Database struct {
	// URL is a PostgreSQL connection URL or key=value DSN. It is a plain
	// string because pgx needs the password, so print it only through
	// Redacted (String, GoString and LogValue do that for you).
	URL string `toml:"url"`
	// Schema holds stashgen's tables.
	Schema string `toml:"schema"`
}

// Generate says what to ask Stash to generate. A toggle left out is nil:
// it takes Stash's own default, then the built-in one (see
// stash.ResolveToggles).
type Generate struct {
	stash.Toggles

	// BatchSize is the number of scenes per metadataGenerate call.
	BatchSize int `toml:"batch_size"`
	// MaxAttempts is the number of generation attempts before a scene is
	// quarantined.
	MaxAttempts int `toml:"max_attempts"`

	// Window is the maintenance window as written, "HH:MM-HH:MM" in the
	// host's local time; "" allows any time. Use Fence.Window.
	Window string `toml:"window"`
	// FreeSpacePath is the folder Stash writes generated files to, as
	// seen from this host, where MinFreeSpace is measured; "" with
	// MinFreeSpace "" turns the floor off.
	FreeSpacePath string `toml:"free_space_path"`
	// MinFreeSpace is the free-space floor as written: a size ("50GiB")
	// or a percentage of the filesystem ("10%"). Use Fence.Floor.
	MinFreeSpace string `toml:"min_free_space"`

	// Fence is Window, MinFreeSpace and FreeSpacePath parsed, filled in by
	// Load (which has checked them and measured the path once), so a run
	// does not parse them again. The zero Fence lets every run through.
	Fence fence.Fence `toml:"-"`
}

// Check configures the probes that find missing generated files.
type Check struct {
	// Concurrency is the number of parallel probes.
	Concurrency int `toml:"concurrency"`
	// ReverifyAfter is the number of seconds after which a scene found
	// complete is probed again, so generated files deleted behind Stash's
	// back are noticed; 0 probes it again only when Stash changes it.
	ReverifyAfter int `toml:"reverify_after"`
}

// Notify configures the dead man's switch.
type Notify struct {
	// PingURL is a healthchecks.io-style base URL; empty turns pings off.
	PingURL string `toml:"ping_url"`
	// PingOnSkip also pings when a run skips (lock held, nothing to do).
	PingOnSkip bool `toml:"ping_on_skip"`
}

// Default returns the built-in configuration. It is complete and valid, so a
// missing config file is not an error.
func Default() Config {
	return Config{
		HeartbeatInterval:  30,
		JobIntervalSeconds: 3600,
		PollInterval:       30,
		LockFile:           "/run/lock/stashgen.lock",
		MetricsFile:        "",
		Stash: Stash{
			URL:                "http://localhost:9999",
			Timeout:            30,
			UnavailableTimeout: 300,
		},
		Database: Database{
			URL:    "postgres://stashgen@localhost:5432/stashgen",
			Schema: "stashgen",
		},
		Generate: Generate{
			BatchSize:     500,
			MaxAttempts:   5,
			Window:        "",
			FreeSpacePath: "",
			MinFreeSpace:  "",
		},
		Check:    Check{Concurrency: 4, ReverifyAfter: 7 * 24 * 60 * 60},
		LogLevel: "info",
	}
}

// HeartbeatEvery is HeartbeatInterval as a duration.
func (c *Config) HeartbeatEvery() time.Duration { return seconds(c.HeartbeatInterval) }

// PollEvery is PollInterval as a duration.
func (c *Config) PollEvery() time.Duration { return seconds(c.PollInterval) }

// JobInterval is JobIntervalSeconds as a duration.
func (c *Config) JobInterval() time.Duration { return seconds(c.JobIntervalSeconds) }

// Level is LogLevel as a slog level; anything unrecognised is info (Load
// has already rejected it).
func (c *Config) Level() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// RequestTimeout is Timeout as a duration.
func (s Stash) RequestTimeout() time.Duration { return seconds(s.Timeout) }

// Reverify is ReverifyAfter as a duration; 0 means never by age.
func (c Check) Reverify() time.Duration {
	if c.ReverifyAfter > math.MaxInt64/int(time.Second) {
		return math.MaxInt64 // 292 years: never, in practice
	}
	return seconds(c.ReverifyAfter)
}

// UnavailableFor is UnavailableTimeout as a duration.
func (s Stash) UnavailableFor() time.Duration { return seconds(s.UnavailableTimeout) }

// GraphQLURL is the GraphQL endpoint under the base URL.
func (s Stash) GraphQLURL() string { return strings.TrimRight(s.URL, "/") + "/graphql" }

// Redacted is the database URL with any password hidden: the only form of it
// that may be printed or logged.
func (d Database) Redacted() string { return RedactURL(d.URL) }

// String keeps the password out of fmt's %v and %s, including when the
// whole Config is printed.
func (d Database) String() string {
	return "{url: " + d.Redacted() + ", schema: " + d.Schema + "}"
}

// GoString keeps the password out of %#v.
func (d Database) GoString() string {
	return "config.Database{URL: " + quote(d.Redacted()) + ", Schema: " + quote(d.Schema) + "}"
}

// MarshalJSON keeps the password out of JSON.
func (d Database) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL    string `json:"url"`
		Schema string `json:"schema"`
	}{d.Redacted(), d.Schema})
}

// LogValue keeps the password out of slog.
func (d Database) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", d.Redacted()), slog.String("schema", d.Schema))
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
