package dbtest

import (
	"regexp"
	"testing"
)

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	for _, testName := range []string{
		"TestX",
		"TestStore_Jobs/status=done#01",
		"TestAVeryLongNameThatGoesOnAndOnAndOnAndOnAndOnAndOnAndOnAndOn/with/sub/tests",
		"Test/Ünïcode name",
	} {
		a, b := databaseName(testName), databaseName(testName)
		if !valid.MatchString(a) {
			t.Errorf("databaseName(%q) = %q: not a plain identifier of at most 63 bytes", testName, a)
		}
		if a == b {
			t.Errorf("databaseName(%q) gave %q twice", testName, a)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		less bool
	}{
		{"9.6", "10", true},
		{"10", "15", true},
		{"15", "9.6", false},
		{"16", "15", false},
	} {
		if got := compareVersions(tt.a, tt.b) < 0; got != tt.less {
			t.Errorf("compareVersions(%q, %q) < 0 = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
}
