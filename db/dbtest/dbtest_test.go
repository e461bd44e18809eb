package dbtest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/db/dbtest"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

func TestURL_TwoCallsGiveTwoEmptyDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := connect(t, dbtest.URL(t)), connect(t, dbtest.URL(t))
	defer a.Close(ctx)
	defer b.Close(ctx)

	var nameA, nameB string
	var tables int
	if err := a.QueryRow(ctx, `SELECT current_database()`).Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, `SELECT current_database()`).Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("both calls gave database %s", nameA)
	}
	if _, err := a.Exec(ctx, `CREATE TABLE only_in_a (id int)`); err != nil {
		t.Fatal(err)
	}
	const countTables = `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`
	if err := b.QueryRow(ctx, countTables).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("database %s has %d tables, want 0", nameB, tables)
	}
}

func TestURL_DropsDatabaseInCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	var open *pgx.Conn
	t.Run("use", func(t *testing.T) {
		open = connect(t, dbtest.URL(t))
		if err := open.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		// open stays connected: cleanup must drop the database anyway.
	})
	defer open.Close(ctx)

	admin := connect(t, dbtest.AdminURL(t))
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after cleanup", name)
	}
}

// TestURL_ThrowawayCluster reruns the tests above in a child test binary
// forced to start its own cluster, as on a machine with no server running,
// then checks that the cluster is gone once the child exits.
func TestURL_ThrowawayCluster(t *testing.T) {
	if os.Getenv(dbtest.EnvForceCluster) == "1" {
		t.Skip("already running in the throwaway cluster")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestURL_(TwoCalls|Drops)", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), dbtest.EnvForceCluster+"=1", dbtest.EnvURL+"=")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("child ran in %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("child test binary: %v", err)
	}
	m := regexp.MustCompile(`started throwaway PostgreSQL at (\S+) in (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatal("child did not start a throwaway cluster")
	}
	if n := strings.Count(string(out), "--- PASS: TestURL_"); n < 2 {
		t.Fatalf("child passed %d tests, want 2", n)
	}
	if _, err := os.Stat(string(m[2])); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there after the child exited (stat: %v)", m[2], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, string(m[1])); err == nil {
		conn.Close(ctx)
		t.Errorf("cluster at %s still answers after the child exited", m[1])
	}
}
