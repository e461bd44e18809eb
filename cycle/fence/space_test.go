package fence

import (
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func skipWithoutStatfs(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("Measure is implemented on Linux only")
	}
}

func TestMeasure(t *testing.T) {
	t.Parallel()
	skipWithoutStatfs(t)
	dir := t.TempDir()
	s, err := Measure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path != dir || s.Free == 0 || s.Total < s.Free {
		t.Errorf("Measure(%s) = %+v", dir, s)
	}

	missing := filepath.Join(dir, "not", "there")
	_, err = Measure(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Measure(missing) = %v, want fs.ErrNotExist", err)
	}
	if want := "measure free space on " + missing + ": no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	// /proc reports no size: a floor there could never trip.
	if _, err := Measure("/proc"); err == nil || !strings.Contains(err.Error(), "/proc: the filesystem reports a size of 0") {
		t.Errorf("Measure(/proc) = %v", err)
	}
}

func TestParseFloor(t *testing.T) {
	t.Parallel()
	const gib, tib = 1 << 30, 1 << 40
	tests := []struct {
		in     string
		want   string // String(), or the error's Reason
		bytes  uint64 // Bytes(1 TiB)
		errors bool
	}{
		{"", "", 0, false},
		{"50GiB", "50GiB", 50 * gib, false},
		{"500MB", "500MB", 500e6, false},
		{"1.5TiB", "1.5TiB", tib + tib/2, false},
		{"100 GB", "100GB", 100e9, false},
		{" 100  gb ", "100GB", 100e9, false},
		{"50gib", "50GiB", 50 * gib, false},
		{"2kB", "2kB", 2000, false},
		{"2KB", "2kB", 2000, false},
		{"4KiB", "4KiB", 4096, false},
		{"1B", "1B", 1, false},
		{"1.9B", "1.9B", 1, false},
		{"007.50GB", "7.5GB", 7.5e9, false},
		{"10%", "10%", tib / 10, false},
		{"2.5 %", "2.5%", tib / 40, false},
		{"99.999999999%", "99.999999999%", 1099511627765, false},
		{"0.1%", "0.1%", 1099511627, false},

		{"50", "50 what? there is no unit: write 50GiB, 50GB or 50%", 0, true},
		{"GiB", "there is no number", 0, true},
		{"-5GiB", "a floor cannot be negative", 0, true},
		{"1.2.3GB", `"1.2.3" is not a number like 50 or 1.5`, 0, true},
		{".5GB", `".5" is not a number like 50 or 1.5`, 0, true},
		{"5.GB", `"5." is not a number like 50 or 1.5`, 0, true},
		{"1.0000000001TiB", `"1.0000000001" has more than 9 decimal places`, 0, true},
		{"50G", `unit "G" is ambiguous: write GiB (powers of 1024) or GB (powers of 1000)`, 0, true},
		{"50m", `unit "m" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)`, 0, true},
		{"50 gigs", `unknown unit "gigs": use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %`, 0, true},
		{"1e3GB", `unknown unit "e3GB": use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %`, 0, true},
		{"0GiB", `a floor of 0 is no floor; write "" for none`, 0, true},
		{"0%", `a floor of 0 is no floor; write "" for none`, 0, true},
		{"0.1B", "that is less than one byte", 0, true},
		{"100%", "a percentage must be below 100%", 0, true},
		{"150%", "a percentage must be below 100%", 0, true},
		{"17000000TiB", "that is more than any filesystem holds", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			f, err := ParseFloor(tt.in)
			if tt.errors {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Reason != tt.want || pe.Want != FloorForm || pe.Value != tt.in {
					t.Fatalf("got %v, want reason %q", err, tt.want)
				}
				if !strings.Contains(err.Error(), `"50GiB"`) || !strings.Contains(err.Error(), `"10%"`) {
					t.Errorf("error %q does not name the forms", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != tt.want || f.Bytes(tib) != tt.bytes || f.IsZero() != (tt.in == "") {
				t.Errorf("got %q, %d bytes of 1 TiB; want %q, %d", f, f.Bytes(tib), tt.want, tt.bytes)
			}
			if back, err := ParseFloor(f.String()); err != nil || back != f {
				t.Errorf("String() does not read back: %v, %v", back, err)
			}
		})
	}
}

func TestFloor_Below(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	size, _ := ParseFloor("50GiB")
	pct, _ := ParseFloor("10%")
	tests := []struct {
		name  string
		floor Floor
		space Space
		want  bool
	}{
		{"no floor", Floor{}, Space{Free: 0, Total: 100 * gib}, false},
		{"size, above", size, Space{Free: 51 * gib, Total: 100 * gib}, false},
		{"size, exactly", size, Space{Free: 50 * gib, Total: 100 * gib}, false},
		{"size, one byte short", size, Space{Free: 50*gib - 1, Total: 100 * gib}, true},
		{"percent, exactly", pct, Space{Free: 10 * gib, Total: 100 * gib}, false},
		{"percent, below", pct, Space{Free: 10*gib - 1, Total: 100 * gib}, true},
		{"percent, huge filesystem", pct, Space{Free: 1 << 60, Total: ^uint64(0)}, true},
	}
	for _, tt := range tests {
		if got := tt.floor.Below(tt.space); got != tt.want {
			t.Errorf("%s: Below = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := pct.Bytes(^uint64(0)); got != ^uint64(0)/10 {
		t.Errorf("10%% of the largest filesystem = %d", got)
	}
}

func TestLowSpaceError(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	path := "/srv/stash/generated"
	tests := []struct {
		floor string
		space Space
		want  string
	}{
		{"50GiB", Space{Path: path, Free: 12*gib + 350*(1<<20), Total: 500 * gib},
			"free space on /srv/stash/generated is 12.3 GiB, below min_free_space 50GiB"},
		{"50GiB", Space{Path: path, Free: 50*gib - 1, Total: 500 * gib},
			"free space on /srv/stash/generated is 49.9 GiB, below min_free_space 50GiB"},
		{"50GB", Space{Path: path, Free: 12_345_678_901, Total: 500e9},
			"free space on /srv/stash/generated is 12.3 GB, below min_free_space 50GB"},
		{"10%", Space{Path: path, Free: 3*gib + 200*(1<<20), Total: 128 * gib},
			"free space on /srv/stash/generated is 3.1 GiB of 128.0 GiB, below min_free_space 10% (12.8 GiB)"},
	}
	for _, tt := range tests {
		f, err := ParseFloor(tt.floor)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Below(tt.space) {
			t.Fatalf("%s: not below", tt.floor)
		}
		e := &LowSpaceError{Space: tt.space, Floor: f}
		if e.Error() != tt.want || e.ExitCode() != 75 {
			t.Errorf("got  %s\nwant %s", e.Error(), tt.want)
		}
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[uint64]string{
		0:                  "0 B",
		1023:               "1023 B",
		1024:               "1.0 KiB",
		1536:               "1.5 KiB",
		1<<30 - 1:          "1023.9 MiB",
		48*(1<<30) + 1<<28: "48.2 GiB",
		1 << 40:            "1.0 TiB",
		^uint64(0):         "15.9 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[uint64]string{
		999:            "999 B",
		1000:           "1.0 kB",
		51_899_999_999: "51.8 GB",
		^uint64(0):     "18.4 EB",
	} {
		if got := DecimalBytes(n); got != want {
			t.Errorf("DecimalBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
