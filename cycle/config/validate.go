package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxSeconds caps every duration key: far beyond any sensible setting, and
// far below where time.Duration would overflow.
const maxSeconds = 30 * 24 * 60 * 60

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// validate checks the merged configuration and returns every problem.
func (l *loader) validate() []*Error {
	c := &l.cfg
	var errs []*Error
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}

	add(l.seconds("heartbeat_interval", c.HeartbeatInterval))
	add(l.seconds("job_interval_seconds", c.JobIntervalSeconds))
	add(l.seconds("poll_interval", c.PollInterval))
	add(l.absPath("lock_file", c.LockFile, false))
	add(l.absPath("metrics_file", c.MetricsFile, true))
	if c.MetricsFile != "" && filepath.IsAbs(c.MetricsFile) && !strings.HasSuffix(c.MetricsFile, ".prom") {
		add(l.errorf("metrics_file",
			"name it like /var/lib/prometheus/node-exporter/stashgen.prom",
			"must end in .prom, the only files node_exporter's textfile collector reads (got %q)", c.MetricsFile))
	}

	add(l.httpURL("stash.url", c.Stash.URL, false))
	if c.Stash.APIKey != "" && strings.IndexFunc(c.Stash.APIKey.Reveal(), badKeyRune) >= 0 {
		add(l.errorf("stash.api_key",
			"copy the key again from Stash's Settings > Security; it is one word with no spaces",
			"must not contain whitespace or control characters (value not shown)"))
	}
	add(l.seconds("stash.timeout", c.Stash.Timeout))
	add(l.seconds("stash.unavailable_timeout", c.Stash.UnavailableTimeout))

	add(l.databaseURL(c.Database.URL))
	switch s := c.Database.Schema; {
	case !schemaName.MatchString(s) || len(s) > 63:
		add(l.errorf("database.schema",
			`use lowercase letters, digits and _, not starting with a digit, e.g. schema = "stashgen"`,
			"must be a plain SQL identifier of at most 63 characters (got %q)", s))
	case strings.HasPrefix(s, "pg_"):
		add(l.errorf("database.schema", `pick another name, e.g. schema = "stashgen"`,
			"must not start with pg_, which PostgreSQL reserves (got %q)", s))
	}

	add(l.count("generate.batch_size", c.Generate.BatchSize))
	add(l.count("generate.max_attempts", c.Generate.MaxAttempts))
	add(l.count("check.concurrency", c.Check.Concurrency))
	if c.Notify.PingURL != "" {
		add(l.httpURL("notify.ping_url", c.Notify.PingURL, true))
	}
	return errs
}

func (l *loader) seconds(key string, n int) *Error {
	switch {
	case n < 1:
		return l.errorf(key, "set it to a number of seconds: "+example(keyIndex[key]),
			"must be at least 1 second (got %d)", n)
	case n > maxSeconds:
		return l.errorf(key, "it is in seconds, not milliseconds: "+example(keyIndex[key]),
			"must be at most %d seconds, 30 days (got %d)", maxSeconds, n)
	}
	return nil
}

func (l *loader) count(key string, n int) *Error {
	if n < 1 {
		return l.errorf(key, "set it to a positive whole number: "+example(keyIndex[key]),
			"must be at least 1 (got %d)", n)
	}
	return nil
}

func (l *loader) absPath(key, p string, optional bool) *Error {
	if p == "" && optional || filepath.IsAbs(p) {
		return nil
	}
	hint := "cron and systemd start stashgen in an unpredictable directory; give the full path, e.g. " + example(keyIndex[key])
	if optional {
		hint = `give the full path, e.g. metrics_file = "/var/lib/prometheus/node-exporter/stashgen.prom", or "" to turn it off`
	}
	return l.errorf(key, hint, "must be an absolute path (got %q)", p)
}

// httpURL checks an absolute http(s) URL with a host and without a query,
// fragment or credentials (the ping URL may have a query).
func (l *loader) httpURL(key, raw string, isPing bool) *Error {
	shown := RedactURL(raw)
	hint := `write it like url = "http://localhost:9999"`
	if isPing {
		hint = `write it like ping_url = "https://hc-ping.com/your-check-uuid", or "" to turn pings off`
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return l.errorf(key, hint, "must be an absolute http:// or https:// URL with a host (got %q)", shown)
	}
	if u.User != nil {
		fix := "remove the user and password; Stash authenticates with api_key"
		if isPing {
			fix = "remove the user and password from the URL"
		}
		return l.errorf(key, fix, "must not contain a user or password (got %q)", shown)
	}
	if isPing {
		return nil
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return l.errorf(key, "give only the base URL; stashgen adds /graphql itself",
			"must not have a query string or fragment (got %q)", shown)
	}
	if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/graphql") {
		return l.errorf(key, "leave off /graphql; stashgen adds it itself",
			"must be Stash's base URL, not its GraphQL endpoint (got %q)", shown)
	}
	return nil
}

// databaseURL checks that pgx can parse the connection string. pgx's own
// error is never shown: its text can carry the password of a malformed URL.
func (l *loader) databaseURL(raw string) *Error {
	hint := "use the form postgres://USER:PASSWORD@HOST:5432/DBNAME, and keep the password in STASHGEN_DATABASE_URL or ~/.pgpass rather than the file"
	if strings.TrimSpace(raw) == "" {
		return l.errorf("database.url", hint, "must not be empty")
	}
	if _, err := pgx.ParseConfig(raw); err != nil {
		return l.errorf("database.url", hint, "is not a valid PostgreSQL connection string (got %s)", showDatabaseURL(raw))
	}
	return nil
}

// showDatabaseURL is the form of an invalid database URL safe to print: the
// redacted URL when it has a clear structure, else nothing at all.
func showDatabaseURL(raw string) string {
	if !strings.Contains(raw, "://") {
		// key=value DSN: RedactURL hides password=...
		return fmt.Sprintf("%q", RedactURL(raw))
	}
	if _, err := url.Parse(raw); err != nil {
		return "a value too malformed to show safely"
	}
	return fmt.Sprintf("%q", RedactURL(raw))
}
