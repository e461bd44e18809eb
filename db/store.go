package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row that should exist does not.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a conditional state change whose row was not
// in one of the expected states.
var ErrConflict = errors.New("row is not in the expected state")

// UnavailableError means PostgreSQL could not be reached. It names the host
// (never the password) and maps to exit code 69.
type UnavailableError struct {
	Host string
	Err  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("postgresql unavailable at %s: %v", e.Host, e.Err)
}
func (e *UnavailableError) Unwrap() error { return e.Err }
func (e *UnavailableError) ExitCode() int { return 69 }
func (e *UnavailableError) Hint() string {
	return "check that PostgreSQL is running at " + e.Host + " and that database.url (or STASHGEN_DATABASE_URL) is right"
}

// RefusedError means PostgreSQL answered but refused the login or has no
// such database: a configuration problem (exit 78), not an outage.
type RefusedError struct {
	Host string
	Err  error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("postgresql at %s refused the connection: %v", e.Host, e.Err)
}
func (e *RefusedError) Unwrap() error { return e.Err }
func (e *RefusedError) ExitCode() int { return 78 }
func (e *RefusedError) Hint() string {
	return "check the user, password and database name in database.url (or STASHGEN_DATABASE_URL); create the database with createdb if it is missing"
}

// Store is stashgen's database. Every method takes ctx first.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	host   string
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects and pings. The schema name is used as search_path for every
// connection, so the SQL below never names it.
func Open(ctx context.Context, url, schema string) (*Store, error) {
	if !identRE.MatchString(schema) {
		return nil, fmt.Errorf("database schema %q: want a plain lowercase identifier", schema)
	}
	if strings.HasPrefix(schema, "pg_") {
		// pg_catalog, pg_temp, pg_toast: reserved, and CREATE SCHEMA refuses
		// any other pg_ name.
		return nil, fmt.Errorf("database schema %q: names starting with pg_ are reserved by PostgreSQL", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %s", redactParseError(err))
	}
	host := hostOf(cfg.ConnConfig.Config)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "stashgen"
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 10*time.Second {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, &UnavailableError{Host: host, Err: err}
	}
	s := &Store{pool: pool, schema: schema, host: host}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && (pe.Code == "28P01" || pe.Code == "28000" || pe.Code == "3D000") {
			// Reached the server, which refused the login or does not have
			// the database: retrying will not help, the URL must change.
			return nil, &RefusedError{Host: host, Err: fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code)}
		}
		return nil, &UnavailableError{Host: host, Err: describeConnErr(err)}
	}
	return s, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Host is where the database lives, safe to print.
func (s *Store) Host() string { return s.host }

// Schema is the schema stashgen's tables live in.
func (s *Store) Schema() string { return s.schema }

func hostOf(c pgconn.Config) string {
	if strings.HasPrefix(c.Host, "/") {
		return fmt.Sprintf("%s (socket), database %s", c.Host, c.Database)
	}
	return fmt.Sprintf("%s, database %s", net.JoinHostPort(c.Host, fmt.Sprint(c.Port)), c.Database)
}

// redactParseError keeps pgx's explanation but never the URL it quotes.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "postgres"); i >= 0 && strings.Contains(msg, "@") {
		return "malformed URL (expected postgres://user@host:5432/dbname)"
	}
	return msg
}

// describeConnErr drops the connection string pgconn sometimes includes.
func describeConnErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return ce.Unwrap()
	}
	return err
}

// IsUnavailable reports whether err means the database cannot be reached
// (as opposed to a query being wrong), so callers can retry.
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// admin shutdown, crash shutdown, cannot connect now
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return pgconn.SafeToRetry(err)
}

// wrap turns connection failures into *UnavailableError so exit codes come
// out right; other errors pass through with the operation named.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if IsUnavailable(err) {
		return &UnavailableError{Host: s.host, Err: fmt.Errorf("%s: %w", op, describeConnErr(err))}
	}
	return fmt.Errorf("%s: %w", op, err)
}
