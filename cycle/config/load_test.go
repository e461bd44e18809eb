package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoad_ValidationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		key     string
		line    int
		msg     string   // exact Msg
		hint    string   // substring of the hint
		missing []string // must not appear anywhere in the error or hint
	}{
		{"heartbeat zero", "heartbeat_interval = 0\n", "heartbeat_interval", 1,
			"must be at least 1 second (got 0)", "heartbeat_interval = 30", nil},
		{"job interval negative", "job_interval_seconds = -5\n", "job_interval_seconds", 1,
			"must be at least 1 second (got -5)", "job_interval_seconds = 3600", nil},
		{"poll zero", "poll_interval = 0\n", "poll_interval", 1,
			"must be at least 1 second (got 0)", "poll_interval = 30", nil},
		{"poll too large", "poll_interval = 2592001\n", "poll_interval", 1,
			"must be at most 2592000 seconds, 30 days (got 2592001)", "seconds, not milliseconds", nil},
		{"stash timeout", "[stash]\ntimeout = 0\n", "stash.timeout", 2,
			"must be at least 1 second (got 0)", "timeout = 30", nil},
		{"unavailable timeout", "[stash]\nunavailable_timeout = -1\n", "stash.unavailable_timeout", 2,
			"must be at least 1 second (got -1)", "unavailable_timeout = 300", nil},
		{"batch size", "[generate]\nbatch_size = 0\n", "generate.batch_size", 2,
			"must be at least 1 (got 0)", "batch_size = 500", nil},
		{"max attempts", "[generate]\n\nmax_attempts = -2\n", "generate.max_attempts", 3,
			"must be at least 1 (got -2)", "max_attempts = 5", nil},
		{"concurrency", "[check]\nconcurrency = 0\n", "check.concurrency", 2,
			"must be at least 1 (got 0)", "concurrency = 4", nil},

		{"stash url no scheme", "[stash]\nurl = \"localhost:9999\"\n", "stash.url", 2,
			`must be an absolute http:// or https:// URL with a host (got "localhost:9999")`, `url = "http://localhost:9999"`, nil},
		{"stash url ftp", "[stash]\nurl = \"ftp://stash\"\n", "stash.url", 2,
			`must be an absolute http:// or https:// URL with a host (got "ftp://stash")`, "http://localhost:9999", nil},
		{"stash url no host", "[stash]\nurl = \"http:///x\"\n", "stash.url", 2,
			`must be an absolute http:// or https:// URL with a host (got "http:///x")`, "http://localhost:9999", nil},
		{"stash url query", "[stash]\nurl = \"http://stash:9999/?apikey=hunter22\"\n", "stash.url", 2,
			`must not have a query string or fragment (got "http://stash:9999/?apikey=<redacted>")`, "base URL", []string{"hunter22"}},
		{"stash url userinfo", "[stash]\nurl = \"https://admin:hunter22@stash\"\n", "stash.url", 2,
			`must not contain a user or password (got "https://admin:<redacted>@stash")`, "api_key", []string{"hunter22"}},
		{"stash url graphql", "[stash]\nurl = \"http://stash:9999/graphql/\"\n", "stash.url", 2,
			`must be Stash's base URL, not its GraphQL endpoint (got "http://stash:9999/graphql/")`, "leave off /graphql", nil},
		{"api key with space", "[stash]\napi_key = \"hunter22 extra\"\n", "stash.api_key", 2,
			"must not contain whitespace or control characters (value not shown)", "no spaces", []string{"hunter22"}},

		{"database url empty", "[database]\nurl = \"\"\n", "database.url", 2,
			"must not be empty", "postgres://USER:PASSWORD@HOST:5432/DBNAME", nil},
		{"database url bad port", "[database]\nurl = \"postgres://u:hunter22@db:port/x\"\n", "database.url", 2,
			"is not a valid PostgreSQL connection string (got a value too malformed to show safely)", "STASHGEN_DATABASE_URL", []string{"hunter22"}},
		{"database url bad option", "[database]\nurl = \"postgres://u:hunter22@db/x?sslmode=sometimes\"\n", "database.url", 2,
			`is not a valid PostgreSQL connection string (got "postgres://u:<redacted>@db/x?sslmode=sometimes")`, "postgres://", []string{"hunter22"}},
		{"database dsn bad option", "[database]\nurl = \"host=db password=hunter22 sslmode=sometimes\"\n", "database.url", 2,
			`is not a valid PostgreSQL connection string (got "host=db password=<redacted> sslmode=sometimes")`, "postgres://", []string{"hunter22"}},
		{"database url slash in password", "[database]\nurl = \"postgres://u:hun/ter22@db/x\"\n", "database.url", 2,
			"is not a valid PostgreSQL connection string (got a value too malformed to show safely)", "postgres://", []string{"hun/ter22", "ter22"}},

		{"schema uppercase", "[database]\nschema = \"Stash\"\n", "database.schema", 2,
			`must be a plain SQL identifier of at most 63 characters (got "Stash")`, `schema = "stashgen"`, nil},
		{"schema digit", "[database]\nschema = \"1stash\"\n", "database.schema", 2,
			`must be a plain SQL identifier of at most 63 characters (got "1stash")`, "not starting with a digit", nil},
		{"schema dash", "[database]\nschema = \"stash-gen\"\n", "database.schema", 2,
			`must be a plain SQL identifier of at most 63 characters (got "stash-gen")`, "lowercase letters, digits and _", nil},
		{"schema too long", "[database]\nschema = \"" + strings.Repeat("s", 64) + "\"\n", "database.schema", 2,
			`must be a plain SQL identifier of at most 63 characters (got "` + strings.Repeat("s", 64) + `")`, "", nil},
		{"schema pg_", "[database]\nschema = \"pg_stash\"\n", "database.schema", 2,
			`must not start with pg_, which PostgreSQL reserves (got "pg_stash")`, "another name", nil},

		{"lock file relative", "lock_file = \"stashgen.lock\"\n", "lock_file", 1,
			`must be an absolute path (got "stashgen.lock")`, `lock_file = "/run/lock/stashgen.lock"`, nil},
		{"lock file empty", "lock_file = \"\"\n", "lock_file", 1,
			`must be an absolute path (got "")`, "full path", nil},
		{"metrics relative", "metrics_file = \"stashgen.prom\"\n", "metrics_file", 1,
			`must be an absolute path (got "stashgen.prom")`, `or "" to turn it off`, nil},
		{"metrics not .prom", "metrics_file = \"/var/lib/stashgen.txt\"\n", "metrics_file", 1,
			`must end in .prom, the only files node_exporter's textfile collector reads (got "/var/lib/stashgen.txt")`, "stashgen.prom", nil},
		{"ping url relative", "[notify]\nping_url = \"hc-ping.com/abc\"\n", "notify.ping_url", 2,
			`must be an absolute http:// or https:// URL with a host (got "hc-ping.com/abc")`, `or "" to turn pings off`, nil},
		{"ping url scheme", "[notify]\nping_url = \"mailto:ops@example.com\"\n", "notify.ping_url", 2,
			`must be an absolute http:// or https:// URL with a host (got "mailto:ops@example.com")`, "https://hc-ping.com", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := loadError(t, tt.file, tt.key, tt.line, tt.msg, tt.hint)
			if e.ExitCode() != 78 {
				t.Errorf("ExitCode() = %d, want 78", e.ExitCode())
			}
			for _, s := range tt.missing {
				if strings.Contains(err.Error(), s) || strings.Contains(e.HintText(), s) {
					t.Errorf("error %q / hint %q reveals %q", err, e.HintText(), s)
				}
			}
		})
	}
}

func TestLoad_ErrorText(t *testing.T) {
	t.Parallel()
	_, _, path, err := loadString(t, "# stashgen\nheartbeat_interval = 30\npoll_interval = 0\n", nil, FlagOverrides{})
	want := "config " + path + ": line 3: poll_interval: must be at least 1 second (got 0)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestLoad_ReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, _, _, err := loadString(t, "poll_interval = 0\n[check]\nconcurrency = 0\n", nil, FlagOverrides{})
	e := firstError(t, err)
	if e.Key != "poll_interval" {
		t.Errorf("first error is for %q, want poll_interval", e.Key)
	}
	if !strings.Contains(err.Error(), "line 3: check.concurrency: must be at least 1 (got 0)") {
		t.Errorf("joined error misses the second problem:\n%v", err)
	}
	var coder interface{ ExitCode() int }
	if !errors.As(err, &coder) || coder.ExitCode() != 78 {
		t.Error("joined error does not carry exit code 78")
	}
}

func TestLoad_UnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, key string
		line            int
		hint            string
	}{
		{"typo", "[stash]\napikey = \"x\"\n", "stash.apikey", 2, "did you mean stash.api_key?"},
		{"dash", "[stash]\napi-key = \"x\"\n", "stash.api-key", 2, "did you mean stash.api_key?"},
		{"missing underscore", "\npollinterval = 3\n", "pollinterval", 2, "did you mean poll_interval?"},
		{"wrong case", "Poll_Interval = 3\n", "Poll_Interval", 1, "did you mean poll_interval?"},
		{"wrong table", "[stash]\nbatch_size = 10\n", "stash.batch_size", 2, "did you mean generate.batch_size?"},
		{"ambiguous", "url = \"http://x\"\n", "url", 1, "did you mean stash.url or database.url?"},
		{"table typo", "[stahs]\nurl = \"http://x\"\n", "stahs", 1, "did you mean [stash]?"},
		{"dotted table typo", "poll_interval = 5\nstahs.url = \"http://x\"\n", "stahs", 2, "did you mean [stash]?"},
		{"nothing close top", "frobnicate = 1\n", "frobnicate", 1,
			"remove it; the keys at the top level are heartbeat_interval, job_interval_seconds, poll_interval, lock_file, metrics_file, stash, database, generate, check, notify"},
		{"nothing close section", "[generate]\nthumbnails = true\n", "generate.thumbnails", 2,
			"remove it; the keys in [generate] are covers, sprites"},
		{"log level is flag only", "log_level = \"debug\"\n", "log_level", 1, "remove it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loadError(t, tt.file, tt.key, tt.line, "unknown key", tt.hint)
		})
	}
}

func TestLoad_WrongTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, key string
		line            int
		msg, hint       string
	}{
		{"quoted seconds", "poll_interval = \"30s\"\n", "poll_interval", 1,
			"must be a whole number (got a string)", "write the number without quotes: poll_interval = 30"},
		{"float", "\n\nheartbeat_interval = 1.5\n", "heartbeat_interval", 3,
			"must be a whole number (got a decimal number)", "heartbeat_interval = 30"},
		{"quoted bool", "[generate]\ncovers = \"yes\"\n", "generate.covers", 2,
			"must be true or false (got a string)", "without quotes: covers = true"},
		{"bool as number", "[notify]\nping_on_skip = 1\n", "notify.ping_on_skip", 2,
			"must be true or false (got a whole number)", "ping_on_skip = false"},
		{"url as number", "[stash]\nurl = 9999\n", "stash.url", 2,
			"must be a quoted string (got a whole number)", `url = "http://localhost:9999"`},
		{"api key as number", "[stash]\napi_key = 12345678\n", "stash.api_key", 2,
			"must be a quoted string (got a whole number)", `api_key = ""`},
		{"table as value", "stash = \"http://x\"\n", "stash", 1,
			"must be a table (got a string)", "[stash] on its own line"},
		{"array of tables", "[[generate]]\ncovers = true\n", "generate", 1,
			"must be a table (got an array of tables)", "[generate]"},
		{"inline table value", "[check]\nconcurrency = { n = 4 }\n", "check.concurrency", 2,
			"must be a whole number (got a table)", "concurrency = 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadError(t, tt.file, tt.key, tt.line, tt.msg, tt.hint)
			if strings.Contains(err.Error(), "12345678") {
				t.Errorf("error %q shows the api_key value", err)
			}
		})
	}
}

func TestLoad_SyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		line, col  int
		msg        string // substring
		secret     string // must not appear
	}{
		{"unquoted secret", "[stash]\napi_key = sk_live_abcdef\n", 2, 11, "expected value but found (text not shown) instead", "sk_live_abcdef"},
		{"unterminated secret", "[stash]\napi_key = \"sk_live_abcdef\n", 2, 0, "strings cannot contain newlines", "sk_live_abcdef"},
		{"bad date", "[stash]\napi_key = 1979-05-27Tsecretxyz\n", 2, 0, "invalid datetime: (text not shown)", "secretxyz"},
		{"duplicate key", "poll_interval = 1\n\npoll_interval = 2\n", 3, 0, "Key 'poll_interval' has already been defined", ""},
		{"number too big", "poll_interval = 99999999999999999999\n", 1, 0, "the number is out of range for int64", "99999999999999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, path, err := loadString(t, tt.file, nil, FlagOverrides{})
			e := firstError(t, err)
			if e.Line != tt.line || (tt.col > 0 && e.Column != tt.col) || e.File != path {
				t.Errorf("got %q at line %d column %d; want line %d column %d", err, e.Line, e.Column, tt.line, tt.col)
			}
			if !strings.HasPrefix(e.Msg, "syntax error: ") || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.msg)
			}
			if e.HintText() == "" {
				t.Error("no hint")
			}
			if tt.secret != "" && (strings.Contains(err.Error(), tt.secret) || strings.Contains(e.HintText(), tt.secret)) {
				t.Errorf("error %q reveals %q", err, tt.secret)
			}
		})
	}
}

func TestLoad_Precedence(t *testing.T) {
	t.Parallel()
	file := `
[stash]
url = "http://file:9999"
api_key = "filekey"
[database]
url = "postgres://file@db/stashgen"
`
	tests := []struct {
		name      string
		env       map[string]string
		flags     FlagOverrides
		stashURL  string
		apiKey    string
		dbURL     string
		logLevel  string
		urlSource Source
		keySource Source
		dbSource  Source
		lvlSource Source
	}{
		{"file", nil, FlagOverrides{},
			"http://file:9999", "filekey", "postgres://file@db/stashgen", "info",
			SourceFile, SourceFile, SourceFile, SourceDefault},
		{"env beats file", map[string]string{
			envStashURL: "http://env:9999", envStashAPIKey: "envkey", envDatabaseURL: "postgres://env@db/stashgen"},
			FlagOverrides{},
			"http://env:9999", "envkey", "postgres://env@db/stashgen", "info",
			SourceEnv, SourceEnv, SourceEnv, SourceDefault},
		{"empty env is unset", map[string]string{envStashURL: "", envStashAPIKey: ""}, FlagOverrides{},
			"http://file:9999", "filekey", "postgres://file@db/stashgen", "info",
			SourceFile, SourceFile, SourceFile, SourceDefault},
		{"flags beat env", map[string]string{
			envStashURL: "http://env:9999", envStashAPIKey: "envkey", envDatabaseURL: "postgres://env@db/stashgen"},
			FlagOverrides{StashURL: "http://flag:9999", DatabaseURL: "postgres://flag@db/stashgen", LogLevel: "DEBUG"},
			"http://flag:9999", "envkey", "postgres://flag@db/stashgen", "debug",
			SourceFlag, SourceEnv, SourceFlag, SourceFlag},
		{"warning means warn", nil, FlagOverrides{LogLevel: "warning"},
			"http://file:9999", "filekey", "postgres://file@db/stashgen", "warn",
			SourceFile, SourceFile, SourceFile, SourceFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, src, _, err := loadString(t, file, tt.env, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Stash.URL != tt.stashURL || cfg.Stash.APIKey.Reveal() != tt.apiKey ||
				cfg.Database.URL != tt.dbURL || cfg.LogLevel != tt.logLevel {
				t.Errorf("got url %q key %q db %q level %q", cfg.Stash.URL, cfg.Stash.APIKey.Reveal(), cfg.Database.URL, cfg.LogLevel)
			}
			s := *src
			if s["stash.url"] != tt.urlSource || s["stash.api_key"] != tt.keySource ||
				s["database.url"] != tt.dbSource || s["log_level"] != tt.lvlSource {
				t.Errorf("sources: url %s key %s db %s level %s", s["stash.url"], s["stash.api_key"], s["database.url"], s["log_level"])
			}
			if s["poll_interval"] != SourceDefault || s["database.schema"] != SourceDefault {
				t.Errorf("untouched keys: poll_interval %s, database.schema %s; want default", s["poll_interval"], s["database.schema"])
			}
		})
	}
}

func TestLoad_EnvAndFlagErrorsNameTheirSource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		flags FlagOverrides
		want  string
	}{
		{"env stash url", map[string]string{envStashURL: "stash:9999"}, FlagOverrides{},
			`config environment (STASHGEN_STASH_URL): stash.url: must be an absolute http:// or https:// URL with a host (got "stash:9999")`},
		{"env database url", map[string]string{envDatabaseURL: "postgres://u:hunter22@db/x?sslmode=maybe"}, FlagOverrides{},
			`config environment (STASHGEN_DATABASE_URL): database.url: is not a valid PostgreSQL connection string (got "postgres://u:<redacted>@db/x?sslmode=maybe")`},
		{"env api key", map[string]string{envStashAPIKey: "hunter22\nX-Evil: 1"}, FlagOverrides{},
			`config environment (STASHGEN_STASH_API_KEY): stash.api_key: must not contain whitespace or control characters (value not shown)`},
		{"flag stash url", nil, FlagOverrides{StashURL: "ftp://stash"},
			`config command line (--stash-url): stash.url: must be an absolute http:// or https:// URL with a host (got "ftp://stash")`},
		{"flag log level", nil, FlagOverrides{LogLevel: "loud"},
			`config command line (--log-level): log_level: must be debug, info, warn or error (got "loud")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Load(Options{SearchPaths: []string{}, Getenv: env(tt.env), Flags: tt.flags})
			if e := firstError(t, err); e.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", e.Error(), tt.want)
			}
		})
	}
}

func TestLoad_APIKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("trimmed", "  \tkey-from-file-123\n\n")
	write("empty", " \n")
	write("twolines", "hunter22\nsecond-line-secret\n")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantKey string
		wantErr string // exact Msg; "" = success
	}{
		{"absolute, trimmed", "[stash]\napi_key_file = \"" + filepath.Join(dir, "trimmed") + "\"\n", nil, "key-from-file-123", ""},
		{"relative to config", "[stash]\napi_key_file = \"trimmed\"\n", nil, "key-from-file-123", ""},
		{"env beats file", "[stash]\napi_key_file = \"missing\"\n", map[string]string{envStashAPIKey: "envkey"}, "envkey", ""},
		{"missing", "[stash]\napi_key_file = \"missing\"\n", nil, "",
			"read key file " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"directory", "[stash]\napi_key_file = \"adir\"\n", nil, "",
			"read key file " + filepath.Join(dir, "adir") + ": is a directory"},
		{"empty", "[stash]\napi_key_file = \"empty\"\n", nil, "",
			"key file " + filepath.Join(dir, "empty") + " is empty"},
		{"two lines", "[stash]\napi_key_file = \"twolines\"\n", nil, "",
			"key file " + filepath.Join(dir, "twolines") + " has whitespace or control characters inside the key (contents not shown)"},
		{"both set", "[stash]\napi_key = \"inline\"\napi_key_file = \"trimmed\"\n", nil, "",
			"cannot be combined with stash.api_key"},
		{"both set, env too", "[stash]\napi_key = \"inline\"\napi_key_file = \"trimmed\"\n", map[string]string{envStashAPIKey: "envkey"}, "",
			"cannot be combined with stash.api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".toml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, src, err := Load(Options{Path: path, Getenv: env(tt.env)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Stash.APIKey.Reveal() != tt.wantKey {
					t.Errorf("key %q, want %q", cfg.Stash.APIKey.Reveal(), tt.wantKey)
				}
				if tt.env == nil && (*src)["stash.api_key"] != SourceFile {
					t.Errorf("source %s, want file", (*src)["stash.api_key"])
				}
				return
			}
			e := firstError(t, err)
			if e.Key != "stash.api_key_file" || e.Msg != tt.wantErr || e.File != path || e.Line == 0 {
				t.Errorf("got %q (key %q line %d)\nwant msg %q", err, e.Key, e.Line, tt.wantErr)
			}
			for _, s := range []string{"hunter22", "second-line-secret", "key-from-file-123", "inline"} {
				if strings.Contains(err.Error(), s) || strings.Contains(e.HintText(), s) {
					t.Errorf("error %q reveals %q", err, s)
				}
			}
		})
	}
}

func TestLoad_MissingExplicitPath(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.toml")
	for _, opts := range []Options{
		{Path: missing, Getenv: env(nil)},
		{Getenv: env(map[string]string{EnvConfig: missing})},
	} {
		_, _, err := Load(opts)
		e := firstError(t, err)
		if e.File != missing || e.Msg != "file does not exist" || !errors.Is(err, fs.ErrNotExist) || e.ExitCode() != 78 {
			t.Errorf("got %q (%+v)", err, e)
		}
		if !strings.Contains(e.HintText(), "/etc/stashgen/stashgen.toml") {
			t.Errorf("hint %q does not name the search path", e.HintText())
		}
	}
}

func TestLoad_ExplicitPathIsDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := Load(Options{Path: dir, Getenv: env(nil)})
	if e := firstError(t, err); e.Msg != "is a directory, not a file" {
		t.Errorf("got %q", err)
	}
}

func TestLoad_SearchPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.toml")
	b := filepath.Join(dir, "b.toml")
	c := filepath.Join(dir, "c.toml")
	for p, content := range map[string]string{b: "poll_interval = 2\n", c: "poll_interval = 3\n"} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		paths    []string
		wantFile string
		wantPoll int
	}{
		{"first existing wins", []string{a, b, c}, b, 2},
		{"order matters", []string{c, b}, c, 3},
		{"none exist: defaults", []string{a, filepath.Join(dir, "x", "y.toml")}, "", 30},
		{"empty list: defaults", []string{}, "", 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, src, err := Load(Options{SearchPaths: tt.paths, Getenv: env(nil)})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.File != tt.wantFile || cfg.PollInterval != tt.wantPoll {
				t.Errorf("file %q poll %d; want %q %d", cfg.File, cfg.PollInterval, tt.wantFile, tt.wantPoll)
			}
			wantSrc := SourceDefault
			if tt.wantFile != "" {
				wantSrc = SourceFile
			}
			if (*src)["poll_interval"] != wantSrc {
				t.Errorf("source %s, want %s", (*src)["poll_interval"], wantSrc)
			}
		})
	}
}

func TestDefaultSearchPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"xdg", map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"},
			[]string{"/etc/stashgen/stashgen.toml", "/xdg/stashgen/stashgen.toml"}},
		{"home", map[string]string{"HOME": "/home/u"},
			[]string{"/etc/stashgen/stashgen.toml", "/home/u/.config/stashgen/stashgen.toml"}},
		{"relative xdg ignored", map[string]string{"XDG_CONFIG_HOME": "cfg", "HOME": "/home/u"},
			[]string{"/etc/stashgen/stashgen.toml", "/home/u/.config/stashgen/stashgen.toml"}},
		{"empty xdg ignored", map[string]string{"XDG_CONFIG_HOME": "", "HOME": "/home/u"},
			[]string{"/etc/stashgen/stashgen.toml", "/home/u/.config/stashgen/stashgen.toml"}},
		{"neither", nil, []string{"/etc/stashgen/stashgen.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := DefaultSearchPaths(env(tt.env))
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoad_NoFileUsesDefaults(t *testing.T) {
	t.Parallel()
	cfg, src, err := Load(Options{SearchPaths: []string{filepath.Join(t.TempDir(), "none.toml")}, Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(*cfg, want) {
		t.Errorf("got %+v\nwant %+v", *cfg, want)
	}
	for k, s := range *src {
		if s != SourceDefault {
			t.Errorf("source of %s is %s, want default", k, s)
		}
	}
}

func TestLoad_FileKeysDecode(t *testing.T) {
	t.Parallel()
	cfg, src, _, err := loadString(t, `
heartbeat_interval = 10
metrics_file = "/var/lib/node-exporter/stashgen.prom"
[generate]
covers = false
batch_size = 50
[check]
concurrency = 8
[notify]
ping_url = "https://hc-ping.com/abc?rid=1"
ping_on_skip = true
`, nil, FlagOverrides{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HeartbeatEvery().Seconds() != 10 || cfg.Generate.BatchSize != 50 || cfg.Check.Concurrency != 8 ||
		!cfg.Notify.PingOnSkip || cfg.Generate.Covers == nil || *cfg.Generate.Covers || cfg.Generate.Sprites != nil {
		t.Errorf("got %+v", cfg)
	}
	if (*src)["generate.covers"] != SourceFile || (*src)["generate.sprites"] != SourceDefault {
		t.Errorf("toggle sources: covers %s sprites %s", (*src)["generate.covers"], (*src)["generate.sprites"])
	}
}

func TestLoad_UnknownKeysAreCapped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 15 {
		b.WriteString("unknown" + strings.Repeat("x", i) + " = 1\n")
	}
	_, _, _, err := loadString(t, b.String(), nil, FlagOverrides{})
	firstError(t, err)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %T, want joined errors", err)
	}
	errs := joined.Unwrap()
	if len(errs) != maxKeyErrors+1 || !strings.HasSuffix(errs[len(errs)-1].Error(), ": 5 more unknown keys") {
		t.Errorf("got %d errors, last %q", len(errs), errs[len(errs)-1])
	}
}
