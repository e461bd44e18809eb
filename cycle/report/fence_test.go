package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
)

// Status looks at the fence when it runs: whether the window is open, when
// it next closes and opens, and the free space against the floor. A
// measuring error is reported, not fatal.
func TestFenceInfo(t *testing.T) {
	t.Parallel()
	today := func(h, m int) *time.Time { t := time.Date(2026, 1, 2, h, m, 0, 0, time.UTC); return &t }
	tomorrow := func(h, m int) *time.Time { t := time.Date(2026, 1, 3, h, m, 0, 0, time.UTC); return &t }
	space := func(free, total uint64) func(string) (fence.Space, error) {
		return func(path string) (fence.Space, error) { return fence.Space{Path: path, Free: free, Total: total}, nil }
	}
	gone := func(path string) (fence.Space, error) {
		return fence.Space{}, errors.New("measure free space on " + path + ": no such file or directory")
	}
	tests := []struct {
		name                   string
		window, floor          string
		measure                func(string) (fence.Space, error)
		want                   *FenceInfo
		wantFree, wantMinBytes *uint64
	}{
		{name: "nothing configured"},
		{name: "window open", window: "10:00-14:00",
			want: &FenceInfo{Window: "10:00-14:00", Open: true, ClosesAt: today(14, 0), OpensAt: tomorrow(10, 0)}},
		{name: "window closed", window: "01:00-07:00",
			want: &FenceInfo{Window: "01:00-07:00", ClosesAt: tomorrow(7, 0), OpensAt: tomorrow(1, 0)}},
		{name: "window across midnight, open", window: "22:00-12:30",
			want: &FenceInfo{Window: "22:00-12:30", Open: true, ClosesAt: today(12, 30), OpensAt: today(22, 0)}},
		{name: "window closes now", window: "01:00-12:00",
			want: &FenceInfo{Window: "01:00-12:00", ClosesAt: tomorrow(12, 0), OpensAt: tomorrow(1, 0)}},
		{name: "floor above", floor: "50GiB", measure: space(100*gib, 1024*gib),
			want: &FenceInfo{Open: true, FreeSpacePath: "/srv/gen", MinFreeSpace: "50GiB"}, wantFree: ptr(uint64(100 * gib)), wantMinBytes: ptr(uint64(50 * gib))},
		{name: "floor exactly met is not below", floor: "50GiB", measure: space(50*gib, 1024*gib),
			want: &FenceInfo{Open: true, FreeSpacePath: "/srv/gen", MinFreeSpace: "50GiB"}, wantFree: ptr(uint64(50 * gib)), wantMinBytes: ptr(uint64(50 * gib))},
		{name: "percentage below", window: "01:00-07:00", floor: "10%", measure: space(5*gib, 100*gib),
			want:     &FenceInfo{Window: "01:00-07:00", ClosesAt: tomorrow(7, 0), OpensAt: tomorrow(1, 0), FreeSpacePath: "/srv/gen", MinFreeSpace: "10%", Below: true},
			wantFree: ptr(uint64(5 * gib)), wantMinBytes: ptr(uint64(10 * gib))},
		{name: "size floor, not measurable", floor: "50GB", measure: gone,
			want:         &FenceInfo{Open: true, FreeSpacePath: "/srv/gen", MinFreeSpace: "50GB", Error: "measure free space on /srv/gen: no such file or directory"},
			wantMinBytes: ptr(uint64(50e9))},
		{name: "percentage, not measurable", floor: "10%", measure: gone,
			want: &FenceInfo{Open: true, FreeSpacePath: "/srv/gen", MinFreeSpace: "10%", Error: "measure free space on /srv/gen: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.floor != "" {
				path = "/srv/gen"
			}
			measure := tt.measure
			if measure == nil {
				measure = func(string) (fence.Space, error) { t.Fatal("measured without a floor"); return fence.Space{}, nil }
			}
			f := mustFence(t, tt.window, tt.floor, path)
			f.Measure = measure
			got := fenceInfo(Options{Now: now, Fence: f})
			if tt.want == nil {
				if got != nil {
					t.Fatalf("fenceInfo = %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatal("fenceInfo = nil")
			}
			if got.Window != tt.want.Window || got.Open != tt.want.Open || !sameTime(got.ClosesAt, tt.want.ClosesAt) || !sameTime(got.OpensAt, tt.want.OpensAt) {
				t.Errorf("window %q open %v closes %v opens %v; want %q %v %v %v", got.Window, got.Open, got.ClosesAt, got.OpensAt,
					tt.want.Window, tt.want.Open, tt.want.ClosesAt, tt.want.OpensAt)
			}
			if got.FreeSpacePath != tt.want.FreeSpacePath || got.MinFreeSpace != tt.want.MinFreeSpace || got.Below != tt.want.Below ||
				got.Error != tt.want.Error || !sameUint(got.FreeBytes, tt.wantFree) || !sameUint(got.MinFreeBytes, tt.wantMinBytes) ||
				(got.TotalBytes == nil) != (tt.wantFree == nil) {
				t.Errorf("floor = %+v; want %+v, free %v, min %v", got, tt.want, tt.wantFree, tt.wantMinBytes)
			}
		})
	}
}

func sameTime(a, b *time.Time) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Equal(*b)
}
func sameUint(a, b *uint64) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// The fence line says whether the window is open and until when, and the
// free space against the floor, in the floor's kind of unit; the path
// gives way first when the line is long, the verdict never.
func TestFenceText(t *testing.T) {
	t.Parallel()
	const path = "/srv/stash/generated"
	long := "/mnt/pool/media/stash/generated/" + strings.Repeat("x", 60)
	tests := []struct {
		name string
		f    FenceInfo
		want string
	}{
		{"window open", FenceInfo{Window: "01:00-07:00", Open: true, ClosesAt: at(-2*time.Hour - 3*time.Minute), OpensAt: at(-13 * time.Hour)},
			"window 01:00-07:00, open (closes at 14:03, in 2h3m)"},
		{"window closed", FenceInfo{Window: "01:00-07:00", ClosesAt: at(-19 * time.Hour), OpensAt: at(-13 * time.Hour)},
			"window 01:00-07:00, closed (opens at 01:00, in 13h)"},
		{"window opens within a minute", FenceInfo{Window: "12:01-13:00", ClosesAt: at(-time.Hour), OpensAt: at(-20 * time.Second)},
			"window 12:01-13:00, closed (opens at 12:00, in 1m)"},
		{"floor ok", FenceInfo{Open: true, FreeSpacePath: path, FreeBytes: ptr(uint64(120*gib + gib/2)), MinFreeSpace: "50GiB", MinFreeBytes: ptr(uint64(50 * gib))},
			"free space 120.5 GiB on /srv/stash/generated, floor 50GiB: ok"},
		{"floor below, in powers of 1000", FenceInfo{Open: true, FreeSpacePath: path, FreeBytes: ptr(uint64(49_900_000_000)), MinFreeSpace: "50GB",
			MinFreeBytes: ptr(uint64(50e9)), Below: true},
			"free space 49.9 GB on /srv/stash/generated, floor 50GB: BELOW"},
		{"percentage", FenceInfo{Open: true, FreeSpacePath: path, FreeBytes: ptr(uint64(3 * gib)), MinFreeSpace: "10%", MinFreeBytes: ptr(uint64(128 * gib / 10)), Below: true},
			"free space 3.0 GiB on /srv/stash/generated, floor 10% (12.8 GiB): BELOW"},
		{"both, path left out", FenceInfo{Window: "01:00-07:00", Open: true, ClosesAt: at(-2*time.Hour - 3*time.Minute), FreeSpacePath: path,
			FreeBytes: ptr(uint64(51_754_355_917)), MinFreeSpace: "50GiB", MinFreeBytes: ptr(uint64(50 * gib)), Below: true},
			"window 01:00-07:00, open (closes at 14:03, in 2h3m); free space 48.2 GiB, floor 50GiB: BELOW"},
		{"long path left out", FenceInfo{Open: true, FreeSpacePath: long, FreeBytes: ptr(uint64(60 * gib)), MinFreeSpace: "50GiB", MinFreeBytes: ptr(uint64(50 * gib))},
			"free space 60.0 GiB, floor 50GiB: ok"},
		{"not measurable", FenceInfo{Window: "01:00-07:00", ClosesAt: at(-19 * time.Hour), OpensAt: at(-13 * time.Hour), FreeSpacePath: path,
			MinFreeSpace: "50GiB", MinFreeBytes: ptr(uint64(50 * gib)), Error: "measure free space on /srv/stash/generated: permission denied"},
			"window 01:00-07:00, closed (opens at 01:00, in 13h); free space unknown: permission denied"},
		{"not measurable, alone", FenceInfo{Open: true, FreeSpacePath: path, MinFreeSpace: "10%", Error: "measure free space on /srv/stash/generated: no such file or directory"},
			"free space on /srv/stash/generated unknown: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := Status{Now: now, Fence: &tt.f}
			if got := st.fenceText(); got != tt.want {
				t.Errorf("fenceText =\n%q, want\n%q", got, tt.want)
			}
		})
	}
}
