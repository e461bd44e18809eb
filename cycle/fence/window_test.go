package fence

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the host's zoneinfo
)

const layout = "2006-01-02 15:04:05 -0700"

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at reads an instant written with its offset, and checks that the offset
// is the one loc has then, so a mistyped case fails loudly.
func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	v = v.In(loc)
	if got := v.Format(layout); got != s {
		t.Fatalf("%s is %s in %s: fix the test case", s, got, loc)
	}
	return v
}

func mustWindow(t *testing.T, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want: String(), or the Reason of the error
		ok       bool
	}{
		{"", "", true},
		{"01:00-07:00", "01:00-07:00", true},
		{"1:00-7:00", "01:00-07:00", true},
		{" 22:00 - 06:00 ", "22:00-06:00", true},
		{"22:00-00:00", "22:00-00:00", true},
		{"00:00-23:59", "00:00-23:59", true},

		{"01:00", "missing the - between start and end", false},
		{"01:00–07:00", "the start and end must be joined by a plain hyphen (-)", false},
		{"-07:00", "the start time is missing", false},
		{"01:00-", "the end time is missing", false},
		{"1am-7am", `the start time "1am" is not written like 07:00`, false},
		{"01:00-07", `the end time "07" is not written like 07:00`, false},
		{"01:0-07:00", `the start time "01:0" is not written like 07:00`, false},
		{"001:00-07:00", `the start time "001:00" is not written like 07:00`, false},
		{"01:00-07:00-08:00", `the end time "07:00-08:00" is not written like 07:00`, false},
		{"+1:00-07:00", `the start time "+1:00" is not written like 07:00`, false},
		{"25:00-07:00", "hour 25 is not 00 to 23", false},
		{"01:00-07:60", "minute 60 is not 00 to 59", false},
		{"22:00-24:00", "24:00 is not a time of day; write 00:00 for midnight", false},
		{"03:00-03:00", `the start and end are both 03:00, which is either never or always; for any time write ""`, false},
		{"0:00-00:00", `the start and end are both 00:00, which is either never or always; for any time write ""`, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			w, err := ParseWindow(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				if w.String() != tt.want {
					t.Errorf("String() = %q, want %q", w.String(), tt.want)
				}
				if back, err := ParseWindow(w.String()); err != nil || back != w {
					t.Errorf("String() does not read back: %v, %v", back, err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (%T), want a *ParseError", err, err)
			}
			if pe.Reason != tt.want || pe.Value != tt.in || pe.Want != WindowForm {
				t.Errorf("got %+v, want reason %q", pe, tt.want)
			}
			if !strings.Contains(err.Error(), "HH:MM-HH:MM") {
				t.Errorf("error %q does not name the form", err)
			}
		})
	}
}

func TestWindow_Always(t *testing.T) {
	t.Parallel()
	var w Window
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if !w.Always() || !w.Open(now) || !w.NextOpen(now).Equal(now) || !w.Closes(now).IsZero() || w.Check(now) != nil {
		t.Errorf("zero Window: always %v open %v next %v closes %v", w.Always(), w.Open(now), w.NextOpen(now), w.Closes(now))
	}
	if mustWindow(t, "01:00-07:00").Always() {
		t.Error("a set window says Always")
	}
}

// TestWindow_Times checks Open, NextOpen and Closes at the instants that
// matter: the boundaries (start inclusive, end exclusive), midnight, and
// the nights the clocks change, in zones east and west of UTC (time.Date
// resolves ambiguous wall times differently in each) and one where the
// change happens at midnight.
func TestWindow_Times(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zone   string
		window string
		at     string
		open   bool
		next   string // NextOpen; "" means at itself (open)
		closes string
	}{
		// Plain boundaries.
		{"before start", "UTC", "01:00-07:00", "2025-06-01 00:59:59 +0000", false, "2025-06-01 01:00:00 +0000", "2025-06-01 07:00:00 +0000"},
		{"at start", "UTC", "01:00-07:00", "2025-06-01 01:00:00 +0000", true, "", "2025-06-01 07:00:00 +0000"},
		{"last second", "UTC", "01:00-07:00", "2025-06-01 06:59:59 +0000", true, "", "2025-06-01 07:00:00 +0000"},
		{"at end", "UTC", "01:00-07:00", "2025-06-01 07:00:00 +0000", false, "2025-06-02 01:00:00 +0000", "2025-06-02 07:00:00 +0000"},
		{"midday", "Europe/Berlin", "01:00-07:00", "2025-06-01 12:00:00 +0200", false, "2025-06-02 01:00:00 +0200", "2025-06-02 07:00:00 +0200"},

		// Across midnight.
		{"span before", "UTC", "22:00-06:00", "2025-06-01 21:59:59 +0000", false, "2025-06-01 22:00:00 +0000", "2025-06-02 06:00:00 +0000"},
		{"span start", "UTC", "22:00-06:00", "2025-06-01 22:00:00 +0000", true, "", "2025-06-02 06:00:00 +0000"},
		{"span midnight", "UTC", "22:00-06:00", "2025-06-02 00:00:00 +0000", true, "", "2025-06-02 06:00:00 +0000"},
		{"span morning", "UTC", "22:00-06:00", "2025-06-02 05:59:59 +0000", true, "", "2025-06-02 06:00:00 +0000"},
		{"span end", "UTC", "22:00-06:00", "2025-06-02 06:00:00 +0000", false, "2025-06-02 22:00:00 +0000", "2025-06-03 06:00:00 +0000"},
		{"to midnight, last second", "UTC", "22:00-00:00", "2025-06-01 23:59:59 +0000", true, "", "2025-06-02 00:00:00 +0000"},
		{"to midnight, at midnight", "UTC", "22:00-00:00", "2025-06-02 00:00:00 +0000", false, "2025-06-02 22:00:00 +0000", "2025-06-03 00:00:00 +0000"},
		{"from midnight", "UTC", "00:00-06:00", "2025-06-01 23:59:59 +0000", false, "2025-06-02 00:00:00 +0000", "2025-06-02 06:00:00 +0000"},
		{"from midnight, at midnight", "UTC", "00:00-06:00", "2025-06-02 00:00:00 +0000", true, "", "2025-06-02 06:00:00 +0000"},
		{"almost all day", "UTC", "06:00-05:59", "2025-06-01 05:59:30 +0000", false, "2025-06-01 06:00:00 +0000", "2025-06-02 05:59:00 +0000"},

		// Berlin springs forward: 2025-03-30 02:00 CET is 03:00 CEST.
		{"spring, 5 hours", "Europe/Berlin", "01:00-07:00", "2025-03-30 01:00:00 +0100", true, "", "2025-03-30 07:00:00 +0200"},
		{"spring, start in gap", "Europe/Berlin", "02:30-05:00", "2025-03-30 01:59:59 +0100", false, "2025-03-30 03:00:00 +0200", "2025-03-30 05:00:00 +0200"},
		{"spring, start in gap, after", "Europe/Berlin", "02:30-05:00", "2025-03-30 03:00:00 +0200", true, "", "2025-03-30 05:00:00 +0200"},
		{"spring, end in gap", "Europe/Berlin", "22:00-02:30", "2025-03-30 01:59:59 +0100", true, "", "2025-03-30 03:00:00 +0200"},
		{"spring, end in gap, after", "Europe/Berlin", "22:00-02:30", "2025-03-30 03:00:00 +0200", false, "2025-03-30 22:00:00 +0200", "2025-03-31 02:30:00 +0200"},
		{"spring, window in gap skipped", "Europe/Berlin", "02:10-02:50", "2025-03-30 00:00:00 +0100", false, "2025-03-31 02:10:00 +0200", "2025-03-31 02:50:00 +0200"},
		{"spring, window in gap, night before", "Europe/Berlin", "02:10-02:50", "2025-03-29 02:10:00 +0100", true, "", "2025-03-29 02:50:00 +0100"},

		// Berlin falls back: 2025-10-26 03:00 CEST is 02:00 CET.
		{"fall, 7 hours", "Europe/Berlin", "01:00-07:00", "2025-10-26 01:00:00 +0200", true, "", "2025-10-26 07:00:00 +0100"},
		{"fall, start twice, before", "Europe/Berlin", "02:30-04:00", "2025-10-26 02:29:59 +0200", false, "2025-10-26 02:30:00 +0200", "2025-10-26 04:00:00 +0100"},
		{"fall, start twice, first", "Europe/Berlin", "02:30-04:00", "2025-10-26 02:30:00 +0200", true, "", "2025-10-26 04:00:00 +0100"},
		{"fall, start twice, stays open", "Europe/Berlin", "02:30-04:00", "2025-10-26 02:10:00 +0100", true, "", "2025-10-26 04:00:00 +0100"},
		{"fall, end twice, open", "Europe/Berlin", "22:00-02:30", "2025-10-26 02:29:59 +0200", true, "", "2025-10-26 02:30:00 +0200"},
		{"fall, end twice, closed", "Europe/Berlin", "22:00-02:30", "2025-10-26 02:30:00 +0200", false, "2025-10-26 22:00:00 +0100", "2025-10-27 02:30:00 +0100"},
		{"fall, end twice, no reopening", "Europe/Berlin", "22:00-02:30", "2025-10-26 02:10:00 +0100", false, "2025-10-26 22:00:00 +0100", "2025-10-27 02:30:00 +0100"},

		// New York, west of UTC: springs forward 2025-03-09 02:00 EST to
		// 03:00 EDT, falls back 2025-11-02 02:00 EDT to 01:00 EST.
		{"NY spring, start in gap", "America/New_York", "02:30-05:00", "2025-03-09 01:59:59 -0500", false, "2025-03-09 03:00:00 -0400", "2025-03-09 05:00:00 -0400"},
		{"NY spring, end in gap", "America/New_York", "22:00-02:30", "2025-03-09 01:59:59 -0500", true, "", "2025-03-09 03:00:00 -0400"},
		{"NY fall, start twice", "America/New_York", "01:30-03:00", "2025-11-02 01:29:59 -0400", false, "2025-11-02 01:30:00 -0400", "2025-11-02 03:00:00 -0500"},
		{"NY fall, start twice, stays open", "America/New_York", "01:30-03:00", "2025-11-02 01:10:00 -0500", true, "", "2025-11-02 03:00:00 -0500"},
		{"NY fall, end twice", "America/New_York", "22:00-01:30", "2025-11-02 01:29:59 -0400", true, "", "2025-11-02 01:30:00 -0400"},
		{"NY fall, end twice, no reopening", "America/New_York", "22:00-01:30", "2025-11-02 01:10:00 -0500", false, "2025-11-02 22:00:00 -0500", "2025-11-03 01:30:00 -0500"},

		// Santiago changes at midnight: 2024-09-08 00:00 does not exist
		// (23:59:59 -04 is followed by 01:00 -03), and on 2025-04-05 the
		// clock falls back from 24:00 to 23:00.
		{"midnight gap, closes at 00:00", "America/Santiago", "22:00-00:00", "2024-09-07 23:59:59 -0400", true, "", "2024-09-08 01:00:00 -0300"},
		{"midnight gap, opens at 00:00", "America/Santiago", "00:00-06:00", "2024-09-07 23:59:59 -0400", false, "2024-09-08 01:00:00 -0300", "2024-09-08 06:00:00 -0300"},
		{"midnight repeat, closes at 00:00", "America/Santiago", "22:00-00:00", "2025-04-05 23:30:00 -0400", true, "", "2025-04-06 00:00:00 -0400"},
		{"midnight repeat, end twice", "America/Santiago", "22:00-23:30", "2025-04-05 23:10:00 -0400", false, "2025-04-06 22:00:00 -0400", "2025-04-06 23:30:00 -0400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tt.zone)
			w := mustWindow(t, tt.window)
			now := at(t, loc, tt.at)
			wantNext := now
			if tt.next != "" {
				wantNext = at(t, loc, tt.next)
			}
			wantCloses := at(t, loc, tt.closes)
			if got := w.Open(now); got != tt.open {
				t.Errorf("Open = %v, want %v", got, tt.open)
			}
			if got := w.NextOpen(now); !got.Equal(wantNext) || got.Location() != loc {
				t.Errorf("NextOpen = %s, want %s", got.Format(layout), wantNext.Format(layout))
			}
			if got := w.Closes(now); !got.Equal(wantCloses) || got.Location() != loc {
				t.Errorf("Closes = %s, want %s", got.Format(layout), wantCloses.Format(layout))
			}
			// Consistency: the window is open from NextOpen until Closes.
			if !w.Open(wantNext) || w.Open(wantCloses) || !w.Open(wantCloses.Add(-time.Second)) {
				t.Errorf("not open from NextOpen until Closes")
			}
		})
	}
}

func TestWindow_LengthOnChangeNights(t *testing.T) {
	t.Parallel()
	loc := zone(t, "Europe/Berlin")
	w := mustWindow(t, "01:00-07:00")
	for day, want := range map[int]time.Duration{
		25: 6 * time.Hour, // an ordinary October night
		26: 7 * time.Hour, // falls back
	} {
		start := time.Date(2025, 10, day, 0, 30, 0, 0, loc)
		opens := w.NextOpen(start)
		if got := w.Closes(opens).Sub(opens); got != want {
			t.Errorf("October %d: open for %v, want %v", day, got, want)
		}
	}
	start := time.Date(2025, 3, 30, 0, 30, 0, 0, loc)
	if got := w.Closes(start).Sub(w.NextOpen(start)); got != 5*time.Hour {
		t.Errorf("March 30: open for %v, want 5h", got)
	}
}

// TestWindow_AYearInBerlin walks 2025 in Berlin half an hour at a time and
// checks the promises callers rely on: NextOpen is open, the instant before
// it is closed, Closes is the first closed instant, and the window opens
// once a night, also on the nights the clocks change.
func TestWindow_AYearInBerlin(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("walks a year")
	}
	loc := zone(t, "Europe/Berlin")
	for _, spec := range []string{"01:00-07:00", "02:30-02:45", "22:00-02:30", "23:00-00:00"} {
		w := mustWindow(t, spec)
		opens := 0
		begin, end := time.Date(2025, 1, 1, 0, 0, 0, 0, loc), time.Date(2025, 12, 31, 0, 0, 0, 0, loc)
		prev := w.Open(begin)
		for now := begin; now.Before(end); now = now.Add(30 * time.Minute) {
			open := w.Open(now)
			if open && !prev {
				opens++
			}
			prev = open
			next, closes := w.NextOpen(now), w.Closes(now)
			if !w.Open(next) || !closes.After(next) || w.Open(closes) || !w.Open(closes.Add(-time.Second)) {
				t.Fatalf("%s at %s: next %s closes %s", spec, now.Format(layout), next.Format(layout), closes.Format(layout))
			}
			if !open && w.Open(next.Add(-time.Second)) {
				t.Fatalf("%s at %s: open a second before NextOpen %s", spec, now.Format(layout), next.Format(layout))
			}
		}
		want := 364
		if spec == "02:30-02:45" {
			want = 363 // inside the March gap
		}
		if opens != want {
			t.Errorf("%s opened %d times in 364 days, want %d", spec, opens, want)
		}
	}
}

func TestWindow_Errors(t *testing.T) {
	t.Parallel()
	loc := zone(t, "Europe/Berlin")
	w := mustWindow(t, "01:00-07:00")
	now := at(t, loc, "2025-06-01 21:48:00 +0200")
	err := w.Check(now)
	var ce *ClosedError
	if !errors.As(err, &ce) || err.Error() != "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 3h12m)" {
		t.Fatalf("Check = %v", err)
	}
	if ce.ExitCode() != 75 {
		t.Errorf("ExitCode = %d", ce.ExitCode())
	}
	if err := w.Check(at(t, loc, "2025-06-01 01:00:00 +0200")); err != nil {
		t.Errorf("Check inside the window = %v", err)
	}
	// On the spring-forward night a window starting in the gap opens when
	// the clock jumps, and the message says so.
	gap := mustWindow(t, "02:30-05:00")
	if err := gap.Check(at(t, loc, "2025-03-30 01:30:00 +0100")); err == nil || err.Error() != "outside the maintenance window 02:30-05:00: it opens at 03:00 (in 30m)" {
		t.Errorf("Check in the gap = %v", err)
	}
}

func TestSpan(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Minute:                 "0m",
		0:                            "0m",
		time.Second:                  "1m",
		29 * time.Second:             "1m",
		90 * time.Second:             "2m",
		45 * time.Minute:             "45m",
		time.Hour:                    "1h",
		3*time.Hour + 12*time.Minute: "3h12m",
		3*time.Hour + 11*time.Minute + 31*time.Second: "3h12m",
		26 * time.Hour: "26h",
	} {
		if got := Span(d); got != want {
			t.Errorf("Span(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFence_Check(t *testing.T) {
	t.Parallel()
	skipWithoutStatfs(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	huge, err := ParseFloor("16000000TiB")
	if err != nil {
		t.Fatal(err)
	}
	small, err := ParseFloor("1B")
	if err != nil {
		t.Fatal(err)
	}
	var closed *ClosedError
	var low *LowSpaceError
	tests := []struct {
		name  string
		fence Fence
		check func(error) bool
	}{
		{"zero fence", Fence{}, func(err error) bool { return err == nil }},
		{"inside, enough space", Fence{Window: mustWindow(t, "11:00-13:00"), Floor: small, Path: dir}, func(err error) bool { return err == nil }},
		{"outside the window", Fence{Window: mustWindow(t, "01:00-07:00"), Floor: huge, Path: dir}, func(err error) bool { return errors.As(err, &closed) }},
		{"below the floor", Fence{Floor: huge, Path: dir}, func(err error) bool { return errors.As(err, &low) }},
		{"path gone", Fence{Floor: small, Path: dir + "/gone"}, func(err error) bool {
			return err != nil && strings.Contains(err.Error(), dir+"/gone")
		}},
	}
	for _, tt := range tests {
		if err := tt.fence.Check(now); !tt.check(err) {
			t.Errorf("%s: Check = %v", tt.name, err)
		}
	}
}
