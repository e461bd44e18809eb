package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle/fence"
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
	errs = append(errs, l.fence()...)
	add(l.count("check.concurrency", c.Check.Concurrency))
	switch n := c.Check.ReverifyAfter; {
	case n < 0:
		add(l.errorf("check.reverify_after",
			"reverify_after = 604800 probes a complete scene again after 7 days; 0 turns that off",
			"must be 0 (off) or a number of seconds (got %d)", n))
	}
	// Any positive number is valid (issue 11): it is an age, not a wait, and
	// even a value typed in milliseconds only re-verifies less often. One
	// beyond time.Duration's 292 years means never (Check.Reverify).
	if c.Notify.PingURL != "" {
		add(l.httpURL("notify.ping_url", c.Notify.PingURL, true))
	}
	return errs
}

// Forms of the fence keys, for messages.
const (
	windowForm = "HH:MM-HH:MM in 24-hour local time"
	floorForm  = `a size like "50GiB" or a percentage like "10%"`
)

// fence checks the maintenance window and the free-space floor and, when
// they are valid, fills in Generate.Fence. It measures free_space_path
// once: a path that cannot be measured at start is a configuration error,
// not a floor that silently never trips.
func (l *loader) fence() []*Error {
	g := &l.cfg.Generate
	var errs []*Error
	w, err := fence.ParseWindow(g.Window)
	if err != nil {
		errs = append(errs, l.fenceSyntax("generate.window", windowForm, g.Window, err,
			`write it like window = "01:00-07:00", or "22:00-06:00" to span midnight, or "" to allow any time`))
	}
	floor, err := fence.ParseFloor(g.MinFreeSpace)
	floorOK := err == nil
	if !floorOK {
		errs = append(errs, l.fenceSyntax("generate.min_free_space", floorForm, g.MinFreeSpace, err,
			`write it like min_free_space = "50GiB" (50·1024³ bytes), "50GB" (50·1000³) or "10%" of the filesystem, or "" for no floor`))
	}

	path := g.FreeSpacePath
	pathHint := `the folder where Stash writes generated files, as seen from this host, e.g. free_space_path = "/srv/stash/generated"`
	pathOK := path == "" || filepath.IsAbs(path)
	if !pathOK {
		errs = append(errs, l.errorf("generate.free_space_path", "give the full path of "+pathHint,
			"must be an absolute path (got %q)", path))
	}
	switch {
	case path != "" && g.MinFreeSpace == "":
		errs = append(errs, l.errorf("generate.free_space_path",
			`add min_free_space = "50GiB" (or "10%") to [generate], or remove free_space_path`,
			"is set (got %q) but generate.min_free_space is not, so there is no floor to keep", path))
	case path == "" && g.MinFreeSpace != "":
		errs = append(errs, l.errorf("generate.min_free_space",
			"add free_space_path to [generate]: "+pathHint+`; or set min_free_space = "" for no floor`,
			"is set (got %q) but generate.free_space_path is not, so there is nowhere to measure it", g.MinFreeSpace))
	case path != "" && pathOK && floorOK:
		if e := l.measure(path, floor); e != nil {
			errs = append(errs, e)
		}
	}
	if len(errs) == 0 {
		g.Fence = fence.Fence{Window: w, Floor: floor, Path: path}
	}
	return errs
}

// fenceSyntax is the error for a window or floor fence cannot parse: the
// expected form, then fence's reason.
func (l *loader) fenceSyntax(key, form, value string, err error, hint string) *Error {
	reason := err.Error()
	var pe *fence.ParseError
	if errors.As(err, &pe) {
		reason = pe.Reason
	}
	return l.errorf(key, hint, "must be %s; %s (got %q)", form, reason, value)
}

// measure checks that the floor's path can be measured now, and that the
// floor fits in its filesystem: one that never can would keep every run
// standing aside.
func (l *loader) measure(path string, floor fence.Floor) *Error {
	space, err := fence.Measure(path)
	if err != nil {
		hint := "make it readable by the user stashgen runs as, or point free_space_path at another folder on the same disk"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			hint = "fix the path, or create the folder: it is where Stash writes generated files (generated: in Stash's config.yml), " +
				"as seen from this host; under systemd, ProtectHome=yes hides /home, /root and /run/user"
		case errors.Is(err, fs.ErrPermission):
			hint = "let the user stashgen runs as reach it (search permission on every directory above it)"
		case errors.Is(err, errors.ErrUnsupported):
			hint = "the free-space floor works on Linux only; remove free_space_path and min_free_space"
		case errors.Is(err, fence.ErrNoSize):
			hint = "point it at a folder on the disk Stash writes generated files to"
		}
		e := l.errorf("generate.free_space_path", hint, "%s", err)
		e.Err = err
		return e
	}
	if b := floor.Bytes(space.Total); b > space.Total {
		return l.errorf("generate.min_free_space", `lower it, or give a percentage of the filesystem such as "10%"`,
			"is more than the whole filesystem at %s, %s (got %q)", path, fence.Bytes(space.Total), floor.String())
	}
	return nil
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
