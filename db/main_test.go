package db_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testSchema is the schema most tests use: the default one.
const testSchema = "stashgen"

// openStore opens a Store and closes it when the test ends.
func openStore(tb testing.TB, url, schema string) *db.Store {
	tb.Helper()
	s, err := db.Open(tb.Context(), url, schema)
	if err != nil {
		tb.Fatalf("open %s: %v", schema, err)
	}
	tb.Cleanup(s.Close)
	return s
}

// connect opens a plain connection with search_path set to schema, for
// reading and writing what the Store has no method for.
func connect(tb testing.TB, url, schema string) *pgx.Conn {
	tb.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	cfg.RuntimeParams["search_path"] = schema
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// env is a migrated Store on a database of its own, and a raw connection
// to the same schema.
type env struct {
	s   *db.Store
	raw *pgx.Conn
}

func newEnv(tb testing.TB) env {
	tb.Helper()
	url := dbtest.URL(tb)
	s := openStore(tb, url, testSchema)
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return env{s: s, raw: connect(tb, url, testSchema)}
}

// exec runs raw SQL and fails the test on error.
func (e env) exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	if _, err := e.raw.Exec(tb.Context(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// scalar reads one value with raw SQL.
func scalar[T any](tb testing.TB, e env, sql string, args ...any) T {
	tb.Helper()
	var v T
	if err := e.raw.QueryRow(tb.Context(), sql, args...).Scan(&v); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return v
}

// column reads one column of many rows with raw SQL.
func column[T any](tb testing.TB, e env, sql string, args ...any) []T {
	tb.Helper()
	rows, err := e.raw.Query(tb.Context(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return out
}

// pgCode is the SQLSTATE of err, "" when it is not a server error.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const checkViolation = "23514"

func equalIDs(got, want []int64) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return slices.Equal(got, want)
}
