package db_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
)

// migrationRows lists schema_migrations of a schema as "version@applied_at".
func migrationRows(t *testing.T, e env) []string {
	t.Helper()
	return column[string](t, e, `SELECT version || '@' || applied_at FROM schema_migrations ORDER BY version`)
}

func TestStore_MigrateFreshDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	s := openStore(t, url, testSchema)
	e := env{s: s, raw: connect(t, url, testSchema)}

	v, err := s.SchemaVersion(ctx)
	if err != nil || v != 0 {
		t.Fatalf("SchemaVersion before Migrate = %d, %v; want 0, nil", v, err)
	}
	if n := scalar[int](t, e, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, testSchema); n != 0 {
		t.Fatalf("SchemaVersion created schema %s", testSchema)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != db.Version() {
		t.Fatalf("SchemaVersion after Migrate = %d, %v; want %d", v, err, db.Version())
	}
	first := migrationRows(t, e)
	if len(first) != db.Version() {
		t.Fatalf("schema_migrations has %d rows, want %d: %v", len(first), db.Version(), first)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if again := migrationRows(t, e); !slices.Equal(again, first) {
		t.Fatalf("second Migrate changed schema_migrations: %v, was %v", again, first)
	}
}

func TestStore_MigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	const n = 8
	stores := make([]*db.Store, n)
	for i := range stores {
		stores[i] = openStore(t, url, testSchema)
	}

	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}

	e := env{s: stores[0], raw: connect(t, url, testSchema)}
	if got := len(migrationRows(t, e)); got != db.Version() {
		t.Fatalf("schema_migrations has %d rows, want %d", got, db.Version())
	}
	for i, s := range stores {
		if v, err := s.SchemaVersion(ctx); err != nil || v != db.Version() {
			t.Errorf("store %d: SchemaVersion = %d, %v; want %d", i, v, err, db.Version())
		}
	}
}

func TestStore_MigrateCustomSchema(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	raw := connect(t, url, "public")
	a := openStore(t, url, "gen_a")
	b := openStore(t, url, "_gen_b2")
	for _, s := range []*db.Store{a, b} {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate %s: %v", s.Schema(), err)
		}
		if v, err := s.SchemaVersion(ctx); err != nil || v != db.Version() {
			t.Fatalf("%s: SchemaVersion = %d, %v; want %d", s.Schema(), v, err, db.Version())
		}
	}
	for _, table := range []string{"gen_a.scenes", "_gen_b2.scenes", "gen_a.schema_migrations"} {
		var ok bool
		if err := raw.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s: exists=%v, %v", table, ok, err)
		}
	}
	for _, table := range []string{"public.scenes", "stashgen.scenes", "public.schema_migrations"} {
		var ok bool
		if err := raw.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || ok {
			t.Errorf("table %s: exists=%v, %v; want it absent", table, ok, err)
		}
	}

	// The two schemas are separate stores.
	if _, err := a.StartRun(ctx, "once", "host", 1, "test"); err != nil {
		t.Fatal(err)
	}
	if runs, err := b.RecentRuns(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("schema %s sees %d runs of %s (%v)", b.Schema(), len(runs), a.Schema(), err)
	}
}

func TestStore_MigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.exec(t, `INSERT INTO schema_migrations (version) VALUES ($1)`, db.Version()+1)
	err := e.s.Migrate(t.Context())
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Migrate on a newer schema = %v; want an error saying it is newer", err)
	}
}

func TestOpen_RefusesInvalidSchema(t *testing.T) {
	t.Parallel()
	// Nothing listens here: the schema must be refused before connecting.
	const url = "postgres://stashgen@127.0.0.1:1/stashgen?sslmode=disable&connect_timeout=2"
	for _, schema := range []string{
		"",
		"Stashgen",
		"1stash",
		"stash-gen",
		"stash gen",
		`stash";DROP TABLE runs;--`,
		strings.Repeat("s", 64),
		"pg_catalog",
		"pg_temp",
	} {
		t.Run(schema, func(t *testing.T) {
			t.Parallel()
			s, err := db.Open(t.Context(), url, schema)
			if err == nil {
				s.Close()
				t.Fatalf("Open accepted schema %q", schema)
			}
			var ue *db.UnavailableError
			if errors.As(err, &ue) {
				t.Fatalf("Open tried to connect before refusing schema %q: %v", schema, err)
			}
			if !strings.Contains(err.Error(), "schema") {
				t.Errorf("error %q does not name the schema", err)
			}
		})
	}
}

func TestOpen_Unavailable(t *testing.T) {
	t.Parallel()
	const password = "hunter2-secret"
	const url = "postgres://stashgen:" + password + "@127.0.0.1:1/stashdb?sslmode=disable&connect_timeout=5"
	s, err := db.Open(t.Context(), url, testSchema)
	if err == nil {
		s.Close()
		t.Fatal("Open on 127.0.0.1:1 succeeded")
	}
	var ue *db.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("Open = %T %v; want *db.UnavailableError", err, err)
	}
	if !db.IsUnavailable(err) {
		t.Error("IsUnavailable = false")
	}
	if got := ue.ExitCode(); got != 69 {
		t.Errorf("ExitCode = %d, want 69", got)
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1:1", "stashdb"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, password) || strings.Contains(ue.Hint(), password) {
		t.Errorf("message or hint contains the password: %q / %q", msg, ue.Hint())
	}
}

func TestOpen_MalformedURLHidesPassword(t *testing.T) {
	t.Parallel()
	const password = "hunter2-secret"
	for _, url := range []string{
		"postgres://stashgen:" + password + "@127.0.0.1:notaport/stashdb",
		"postgres://stashgen:" + password + "@127.0.0.1:5432/stashdb?sslmode=bogus",
		"host=127.0.0.1 password=" + password + " port=notaport",
	} {
		s, err := db.Open(t.Context(), url, testSchema)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open(%q) error contains the password: %v", url, err)
		}
	}
}

func TestOpen_MissingDatabaseIsAConfigError(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/stashgen_no_such_database"
	_, err = db.Open(context.Background(), u.String(), "stashgen")
	var re *db.RefusedError
	if !errors.As(err, &re) || re.ExitCode() != 78 {
		t.Fatalf("err = %v, want a *RefusedError with exit code 78", err)
	}
	if !strings.Contains(err.Error(), "stashgen_no_such_database") {
		t.Fatalf("error does not name the database: %v", err)
	}
}
