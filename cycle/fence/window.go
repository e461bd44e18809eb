package fence

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// WindowForm is the form a window is written in, for messages.
const WindowForm = `HH:MM-HH:MM in 24-hour local time, e.g. "01:00-07:00" or "22:00-06:00"`

// Window is a daily maintenance window in wall-clock time: "01:00-07:00"
// is open from 01:00 until 07:00 on the clock of the zone of the time.Time
// values it is given (the host's local time, for time.Now). A start later
// than the end spans midnight: "22:00-06:00" is open from 22:00 until 06:00
// the next morning, and "22:00-00:00" closes at midnight. The start is
// inclusive and the end exclusive: 01:00:00 is inside, 07:00:00 is not.
//
// Because it is wall-clock time, the window is shorter or longer on the
// nights the clocks change: 01:00-07:00 lasts 5 hours when they spring
// forward and 7 when they fall back. Each night the window opens once and
// closes once, at the first instant the clock reads the boundary or later:
//
//   - A boundary that does not exist that night (02:30 in Europe/Berlin on
//     the last Sunday of March, when 02:00 jumps to 03:00) takes effect
//     when the clock jumps past it, at 03:00. A window wholly inside the
//     gap (02:10-02:50) does not open that night.
//   - A boundary that exists twice (02:30 on the last Sunday of October,
//     when 03:00 falls back to 02:00) takes effect at its first
//     occurrence. The window does not reopen when the clock reads the
//     same times again: 22:00-02:30 closes at the first 02:30, and
//     02:30-04:00 stays open through the repeated hour.
//
// So a window never opens or closes twice in one night, and a run that saw
// it open is never told it closed earlier than its Closes said.
//
// The zero Window (written "") is always open.
type Window struct {
	start, end int // minutes after midnight
	set        bool
}

// ParseWindow reads "HH:MM-HH:MM": 24-hour times, hours with one or two
// digits, minutes with two, spaces around the dash allowed. "" is the zero
// Window, always open. Midnight is 00:00 at either end ("24:00" is an
// error that says so). A start equal to the end is an error: it could mean
// an empty window or a whole day, and "" already says "any time".
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, nil
	}
	fail := func(reason string) (Window, error) {
		return Window{}, &ParseError{Value: s, Reason: reason, Want: WindowForm}
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		if strings.ContainsAny(s, "–—") {
			return fail("the start and end must be joined by a plain hyphen (-)")
		}
		return fail("missing the - between start and end")
	}
	start, err := parseClock("start", strings.TrimSpace(a))
	if err != nil {
		return fail(err.Error())
	}
	end, err := parseClock("end", strings.TrimSpace(b))
	if err != nil {
		return fail(err.Error())
	}
	if start == end {
		return fail(`the start and end are both ` + clock(start) + `, which is either never or always; for any time write ""`)
	}
	return Window{start: start, end: end, set: true}, nil
}

// parseClock reads H:MM or HH:MM as minutes after midnight; which is
// "start" or "end", for the message.
func parseClock(which, s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || h == "" || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		if s == "" {
			return 0, fmt.Errorf("the %s time is missing", which)
		}
		return 0, fmt.Errorf("the %s time %q is not written like 07:00", which, s)
	}
	hour, _ := strconv.Atoi(h)
	minute, _ := strconv.Atoi(m)
	switch {
	case hour == 24 && minute == 0:
		return 0, fmt.Errorf("24:00 is not a time of day; write 00:00 for midnight")
	case hour > 23:
		return 0, fmt.Errorf("hour %s is not 00 to 23", h)
	case minute > 59:
		return 0, fmt.Errorf("minute %s is not 00 to 59", m)
	}
	return hour*60 + minute, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func clock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

// String is the canonical form, "01:00-07:00", or "" for the zero Window:
// ParseWindow reads it back to the same Window.
func (w Window) String() string {
	if !w.set {
		return ""
	}
	return clock(w.start) + "-" + clock(w.end)
}

// Always reports whether the window is the zero Window: no restriction.
func (w Window) Always() bool { return !w.set }

// Open reports whether t is inside the window.
func (w Window) Open(t time.Time) bool {
	if !w.set {
		return true
	}
	open, _ := w.around(t)
	return !open.After(t)
}

// NextOpen is when the window next opens: t itself when it is open at t.
func (w Window) NextOpen(t time.Time) time.Time {
	if !w.set {
		return t
	}
	open, _ := w.around(t)
	if open.After(t) {
		return open
	}
	return t
}

// Closes is when the window that contains t closes, or, when t is outside
// the window, when the next one will close. It is the zero Time for the
// zero Window, which never closes. A run that starts at t should stop
// sending work at Closes(t).
func (w Window) Closes(t time.Time) time.Time {
	if !w.set {
		return time.Time{}
	}
	_, closes := w.around(t)
	return closes
}

// Check returns nil when t is inside the window, else a *ClosedError that
// says when it opens.
func (w Window) Check(t time.Time) error {
	if w.Open(t) {
		return nil
	}
	return &ClosedError{Window: w, At: t, Opens: w.NextOpen(t)}
}

// around returns the night's window that contains t or, when t is outside,
// the next one: open <= t < closes in the first case, t < open in the
// second. Both are in t's location.
func (w Window) around(t time.Time) (open, closes time.Time) {
	loc := t.Location()
	y, m, d := t.Date()
	// t's own date and its neighbours cover every window that can contain
	// t (a spanning one opened the day before; where the clock falls back
	// across midnight, t's date can lag the latest window's). Windows of
	// later days come in order, and one can be empty (wholly inside a
	// spring-forward gap), so look a few days ahead for the next.
	for day := d - 1; day <= d+3; day++ {
		open, closes = w.on(y, m, day, loc)
		if t.Before(closes) && open.Before(closes) {
			return open, closes
		}
	}
	panic("fence: no window in five days: " + w.String()) // a set Window opens at least every other day
}

// on is the window that opens on the given day (which time.Date
// normalises, so day may be 0 or 32).
func (w Window) on(y int, m time.Month, day int, loc *time.Location) (open, closes time.Time) {
	endDay := day
	if w.end <= w.start {
		endDay++ // spans midnight
	}
	return firstAtOrAfter(y, m, day, w.start, loc), firstAtOrAfter(y, m, endDay, w.end, loc)
}

// firstAtOrAfter is the first instant whose wall clock in loc reads the
// given day and minute, or later: the instant itself when it exists once,
// its first occurrence when the clock falls back over it, and the end of
// the gap when the clock springs forward over it. time.Date does not do
// this: for such times it picks one of the two offsets without saying
// which (in practice it differs between zones east and west of UTC).
func firstAtOrAfter(y int, m time.Month, day, minute int, loc *time.Location) time.Time {
	// w is the wall time written as if it were UTC; an instant u shows it
	// when u plus the offset in effect at u equals w. Offsets lie within
	// -12h..+14h, so every instant showing a time within an hour of w lies
	// in [w-15h, w+13h].
	w := time.Date(y, m, day, 0, minute, 0, 0, time.UTC)
	u := w.Add(-15 * time.Hour)
	for u.Before(w.Add(15 * time.Hour)) {
		lt := u.In(loc)
		_, off := lt.Zone()
		_, end := lt.ZoneBounds()
		// Invariant: the wall clock at u reads before w. Within one zone
		// period the clock runs evenly, so w shows at x unless the period
		// ends first.
		x := w.Add(-time.Duration(off) * time.Second)
		if end.IsZero() || x.Before(end) {
			return x.In(loc)
		}
		// The period ends before the clock reads w. If the clock then
		// jumps past w, w does not exist: the jump is the boundary.
		_, next := end.In(loc).Zone()
		if end.Add(time.Duration(next) * time.Second).After(w) {
			return end.In(loc)
		}
		u = end
	}
	return time.Date(y, m, day, 0, minute, 0, 0, loc) // not reached with offsets in -12h..+14h
}

// ClosedError is the error a run returns when it stands aside because it
// started outside the window.
type ClosedError struct {
	Window Window
	At     time.Time // when the run looked
	Opens  time.Time // when the window next opens
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("outside the maintenance window %s: it opens at %s (in %s)",
		e.Window, e.Opens.Format("15:04"), Span(e.Opens.Sub(e.At)))
}

// ExitCode is 75: standing aside is not a failure.
func (e *ClosedError) ExitCode() int { return ExitTempFail }

// Span is a wait as people say it: "3h12m", "45m", "2m", to the nearest
// minute, and "1m" for anything shorter that is still in the future.
func Span(d time.Duration) string {
	if d <= 0 {
		return "0m"
	}
	d = max(d.Round(time.Minute), time.Minute)
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%dm", h, m)
}

// ParseError is a window or floor that cannot be read. Reason says what is
// wrong, Want the form expected; the config package puts them in its own
// message next to the key.
type ParseError struct {
	Value  string // as given
	Reason string
	Want   string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s (got %q); want %s", e.Reason, e.Value, e.Want)
}
