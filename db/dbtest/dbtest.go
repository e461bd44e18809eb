// Package dbtest gives each test its own empty database on a real PostgreSQL,
// so tests never share state and never need a mock.
//
// The server is chosen once per test binary, in this order:
//
//  1. STASHGEN_TEST_DATABASE_URL, an admin URL allowed to CREATE DATABASE;
//  2. 127.0.0.1:5432 as user postgres without a password;
//  3. a throwaway cluster started from the installed PostgreSQL binaries
//     (initdb and pg_ctl in PATH or /usr/lib/postgresql/*/bin).
//
// A package that uses dbtest must call [Main] from TestMain, so that a
// throwaway cluster is stopped when its tests end:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvURL names an admin URL to use instead of looking for a server.
	EnvURL = "STASHGEN_TEST_DATABASE_URL"
	// EnvForceCluster, when "1", skips the first two choices and always
	// starts a throwaway cluster; dbtest's own tests use it so CI covers
	// the path a machine without a running server takes.
	EnvForceCluster = "STASHGEN_TEST_FORCE_CLUSTER"

	localURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

var (
	mainCalled atomic.Bool

	once     sync.Once
	adminURL string
	started  *cluster // the throwaway cluster, if one was started
	findErr  error
)

// Main runs the tests of a package that uses dbtest, then stops the
// throwaway cluster if one was started. Call it from TestMain.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if started != nil {
		if err := started.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// AdminURL returns the URL of the server's postgres database, for tests that
// need to create databases of their own. Prefer [URL].
func AdminURL(tb testing.TB) string {
	tb.Helper()
	if !mainCalled.Load() {
		tb.Fatalf("dbtest: call dbtest.Main from TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }")
	}
	once.Do(func() {
		adminURL, started, findErr = findServer()
		if started != nil {
			tb.Logf("dbtest: started throwaway PostgreSQL at %s in %s", adminURL, started.dir)
		}
	})
	if findErr != nil {
		tb.Fatalf("dbtest: %v", findErr)
	}
	return adminURL
}

// URL creates a new, empty database for the caller and returns its URL.
// The database is dropped, its connections closed, when the test ends.
func URL(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL(tb)
	name := databaseName(tb.Name())

	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("dbtest: parse admin URL: %v", err)
	}
	u.Path = "/" + name

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// template0 accepts no connections, so parallel tests can copy it at once.
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		tb.Fatalf("dbtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	return u.String()
}

// NewDatabase is URL under a name that says what it does.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return URL(tb)
}

func findServer() (string, *cluster, error) {
	if u := os.Getenv(EnvURL); u != "" {
		// Someone chose this server: a typo must fail, not fall through.
		if err := ping(u); err != nil {
			return "", nil, fmt.Errorf("connect to %s: %w", EnvURL, err)
		}
		return u, nil, nil
	}
	var localErr error
	if os.Getenv(EnvForceCluster) == "1" {
		localErr = fmt.Errorf("not tried: %s=1", EnvForceCluster)
	} else if localErr = ping(localURL); localErr == nil {
		return localURL, nil, nil
	}
	c, err := startCluster()
	if err != nil {
		return "", nil, fmt.Errorf("no PostgreSQL server for tests:\n"+
			"  %s is not set\n"+
			"  127.0.0.1:5432 as user postgres: %v\n"+
			"  throwaway cluster: %v\n"+
			"fix: install Debian's postgresql package (apt-get install postgresql), "+
			"or set %s to a URL of a role that can CREATE DATABASE",
			EnvURL, localErr, err, EnvURL)
	}
	return c.url, c, nil
}

func ping(connString string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return adminExec(ctx, connString, "SELECT 1")
}

func adminExec(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// databaseName turns a test name into a unique identifier that needs no
// quoting and fits PostgreSQL's 63-byte limit.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix) // crypto/rand.Read never fails
	return "stashgen_" + name + "_" + hex.EncodeToString(suffix)
}
