package db_test

import (
	"testing"

	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/db/dbtest"
)

func TestStore_TryRunLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.URL(t)
	a, b := openStore(t, url, testSchema), openStore(t, url, testSchema)

	la, ok, err := a.TryRunLock(ctx)
	if err != nil || !ok || la == nil {
		t.Fatalf("first TryRunLock = %v, %v, %v; want a lock", la, ok, err)
	}
	// A held lock pins a connection, and closing its store waits for it.
	t.Cleanup(la.Release)
	if lb, ok, err := b.TryRunLock(ctx); err != nil || ok || lb != nil {
		t.Fatalf("TryRunLock from another store while held = %v, %v, %v; want not ok", lb, ok, err)
	}
	// Another session of the same store does not share the lock either.
	if l, ok, err := a.TryRunLock(ctx); err != nil || ok || l != nil {
		t.Fatalf("second TryRunLock from the same store = %v, %v, %v; want not ok", l, ok, err)
	}

	la.Release()
	lb, ok, err := b.TryRunLock(ctx)
	if err != nil || !ok {
		t.Fatalf("TryRunLock after Release = %v, %v; want ok", ok, err)
	}
	t.Cleanup(lb.Release)
	la.Release() // twice: no effect, and must not release b's lock
	if l, ok, err := a.TryRunLock(ctx); err != nil || ok || l != nil {
		t.Fatalf("TryRunLock after a second Release of the old lock = %v, %v, %v; want not ok", l, ok, err)
	}
	lb.Release()
	lb.Release()

	var none *db.RunLock
	none.Release()
}
