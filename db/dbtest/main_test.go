package dbtest_test

import (
	"testing"

	"github.com/stashgen/stashgen/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
