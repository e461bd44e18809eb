package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stashgen/stashgen/cycle/fence"
)

// Limits that keep the status output within 15 lines of a terminal.
const (
	maxReasons  = 4   // health reasons shown
	maxJobs     = 2   // ledger jobs shown
	maxQueue    = 2   // Stash queue entries named
	maxTextRune = 100 // free text (errors, reasons) per line
	maxLines    = 15  // the whole status
)

// WriteStatus prints the status for a terminal: at most 15 lines, times in
// the zone of st.Now.
func WriteStatus(w io.Writer, st Status) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-14s%s\n", label, fmt.Sprintf(format, args...))
	}
	line("health:", "%s", strings.ToUpper(st.Health.Level.String()))
	for i, r := range st.Health.Reasons {
		if i == maxReasons {
			fmt.Fprintf(&b, "  - and %d more\n", len(st.Health.Reasons)-maxReasons)
			break
		}
		if !st.Database.Reachable {
			// The only line there is: show the whole error.
			fmt.Fprintf(&b, "  - %s\n", strings.Join(strings.Fields(r), " "))
			continue
		}
		fmt.Fprintf(&b, "  - %s\n", clip(r))
	}
	if !st.Database.Reachable {
		return write(w, b.String())
	}

	switch r := st.LastRun; {
	case st.Database.SchemaVersion == 0:
		line("last run:", "none recorded (the schema does not exist yet)")
	case r == nil:
		line("last run:", "none recorded")
	case r.Outcome == "running":
		line("last run:", "#%d %s, running since %s (%s)", r.ID, r.Command, st.at(r.StartedAt), st.ago(r.StartedAt))
	default:
		line("last run:", "#%d %s, %s, started %s (%s), took %s%s", r.ID, r.Command, r.outcomeText(),
			st.at(r.StartedAt), st.ago(r.StartedAt), human(time.Duration(r.DurationSeconds*float64(time.Second))), r.heardText())
		if r.Error != "" {
			line("  error:", "%s", clip(r.Error))
		}
	}
	if r := st.LastSuccess; r != nil && (st.LastRun == nil || r.ID != st.LastRun.ID) {
		line("last success:", "#%d %s, %s, ended %s (%s)", r.ID, r.Command, r.Outcome, st.at(r.ended()), st.ago(r.ended()))
	}
	if hb := st.Heartbeat; hb != nil {
		proc := "another host: cannot tell if it runs"
		if hb.Alive != nil && *hb.Alive {
			proc = "running"
		} else if hb.Alive != nil {
			proc = "not running"
		}
		line("heartbeat:", "%s, run #%d in phase %s, pid %d on %s (%s)", st.ago(hb.BeatAt), hb.RunID, hb.Phase, hb.PID, hb.Host, proc)
	} else if st.Database.SchemaVersion > 0 {
		line("heartbeat:", "none recorded")
	}

	if len(st.Jobs) == 0 {
		line("jobs:", "none active")
	}
	for i, j := range st.Jobs {
		label := ""
		if i == 0 {
			label = "jobs:"
		}
		if i == maxJobs {
			line("", "and %d more active ledger jobs", len(st.Jobs)-maxJobs)
			break
		}
		line(label, "%s", clip(st.jobText(j)))
	}
	line("stash:", "%s", clip(st.stashText()))
	if c := st.Scenes; c != nil {
		line("scenes:", "%d pending, %d backing off, %d quarantined, %d generated", c.Pending, c.Backoff, c.Quarantined, c.Generated)
	}
	// The fence, checks and failing lines go only where they fit, the fence
	// first (it says whether the next run will work at all): status stays
	// within 15 lines, and --json always has them.
	fits := func() bool { return strings.Count(b.String(), "\n") < maxLines }
	if f := st.Fence; f != nil && fits() {
		line("fence:", "%s", st.fenceText())
	}
	if c := st.Checks; c != nil && fits() {
		line("checks:", "%s", clip(st.checksText()))
		// The next check's cost, where it leaves room for every failing
		// scene: those matter more at 1 a.m.
		if strings.Count(b.String(), "\n")+1+len(st.Failing) <= maxLines {
			line("cost:", "%s", clip(st.costText()))
		}
	}
	for i, f := range st.Failing {
		if !fits() {
			break
		}
		label := ""
		if i == 0 {
			label = "failing:"
		}
		state := fmt.Sprintf("%d attempts", f.Attempts)
		if f.Quarantined {
			state = "quarantined"
		}
		line(label, "%s", clip(fmt.Sprintf("scene %d (%s): %s", f.ID, state, f.Error)))
	}
	return write(w, b.String())
}

// WriteJSON prints v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return write(w, string(b)+"\n")
}

func write(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	return err
}

func (st Status) jobText(j JobInfo) string {
	s := fmt.Sprintf("ledger #%d %s %s", j.ID, j.Type, j.Status)
	var about []string
	if j.CreatedBy != "stashgen" {
		about = append(about, "by "+j.CreatedBy)
	}
	if j.RunID != nil {
		about = append(about, fmt.Sprintf("run #%d", *j.RunID))
	}
	if j.Scenes > 0 {
		about = append(about, fmt.Sprintf("%d scenes", j.Scenes))
	}
	if j.StartedAt != nil {
		about = append(about, "started "+st.ago(*j.StartedAt))
	}
	if len(about) > 0 {
		s += " (" + strings.Join(about, ", ") + ")"
	}
	switch {
	case j.Stash != nil:
		s += fmt.Sprintf(", stash job %s: %s %s", j.StashJobID, j.Stash.Status, percent(j.Stash.Progress))
	case j.StashError != "":
		s += fmt.Sprintf(", stash job %s: %s", j.StashJobID, j.StashError)
	case j.StashJobID != "":
		s += fmt.Sprintf(", stash job %s, last seen at %s", j.StashJobID, percent(j.Progress))
	}
	return strings.TrimSpace(s)
}

func (st Status) stashText() string {
	s := st.Stash
	switch {
	case !s.Asked:
		return "not asked"
	case !s.Reachable:
		return s.URL + ": unreachable: " + s.Error
	case len(s.Queue) == 0:
		return s.URL + ": idle"
	}
	var names []string
	for i, j := range s.Queue {
		if i == maxQueue {
			names = append(names, fmt.Sprintf("%d more", len(s.Queue)-maxQueue))
			break
		}
		names = append(names, strings.TrimSpace(fmt.Sprintf("#%s %s %s %s", j.ID, j.Description, j.Status, percent(j.Progress))))
	}
	return fmt.Sprintf("%s: %d queued: %s", s.URL, len(s.Queue), strings.Join(names, ", "))
}

// heardText says how the run followed its job: listening to Stash's
// events, or polling.
func (r *RunInfo) heardText() string {
	switch {
	case r.Listening == nil:
		return ""
	case *r.Listening:
		return ", listening"
	}
	return ", polling"
}

// checksText says how old the checks are, what the rolling
// re-verification will do, and what the next check probes (each probe a
// line in Stash's log).
func (st Status) checksText() string {
	c := st.Checks
	s := "none yet"
	if c.OldestCheck != nil {
		s = "oldest " + st.ago(*c.OldestCheck)
	}
	if c.ReverifyAfterSeconds > 0 {
		s += fmt.Sprintf(", %d due (reverify_after %s, up to %d a run)", c.Due,
			human(time.Duration(c.ReverifyAfterSeconds)*time.Second), c.PerRun)
	} else {
		s += ", re-verification off"
	}
	if st.Scenes != nil && st.Scenes.ToCheck > 0 {
		s += fmt.Sprintf("; %d new or changed to probe", st.Scenes.ToCheck)
	}
	return s
}

// costText says what the next check will ask of Stash, each file request
// a line in Stash's log when it logs HTTP access (its default).
func (st Status) costText() string {
	c := st.Checks
	if c.NextScenes == 0 {
		return "next check probes no file"
	}
	return fmt.Sprintf("next check: up to %d file requests (%d scenes × %d, + markers'), a line each in Stash's log",
		c.NextFileRequests, c.NextScenes, c.FilesPerScene)
}

// fenceText says whether the window is open and until when, and how the
// free space stands against the floor:
//
//	window 01:00-07:00, open (closes at 07:00, in 2h3m); free space 48.2 GiB on /srv/stash/generated, floor 50GiB: BELOW
//
// The path is the first thing dropped when the line is too long, so that
// the verdict (ok, BELOW) always shows.
func (st Status) fenceText() string {
	f := st.Fence
	var window string
	switch {
	case f.Window == "":
	case f.Open && f.ClosesAt != nil:
		window = fmt.Sprintf("window %s, open (closes at %s, in %s)", f.Window, st.clock(*f.ClosesAt), fence.Span(f.ClosesAt.Sub(st.Now)))
	case f.OpensAt != nil:
		window = fmt.Sprintf("window %s, closed (opens at %s, in %s)", f.Window, st.clock(*f.OpensAt), fence.Span(f.OpensAt.Sub(st.Now)))
	}
	join := func(floor string) string {
		if window == "" || floor == "" {
			return window + floor
		}
		return window + "; " + floor
	}
	if f.MinFreeSpace == "" {
		return clip(join(""))
	}
	// withPath is the line with on = " on <path>", or on = "" when that
	// is too long.
	withPath := func(floor func(on string) string) string {
		s := join(floor(" on " + f.FreeSpacePath))
		if utf8.RuneCountInString(s) > maxTextRune {
			s = join(floor(""))
		}
		return clip(s)
	}
	if f.FreeBytes == nil {
		// Measure's error starts with the path: keep only why.
		why := strings.TrimPrefix(f.Error, "measure free space on "+f.FreeSpacePath+": ")
		return withPath(func(on string) string {
			return fmt.Sprintf("free space%s unknown: %s", on, why)
		})
	}
	// MinFreeSpace is Floor.String, which ParseFloor reads back: its
	// units are the floor's own, as in the run's low-space error.
	fl, _ := fence.ParseFloor(f.MinFreeSpace)
	floor := f.MinFreeSpace
	if f.MinFreeBytes != nil && fl.Percent() {
		floor += " (" + fl.ShowLimit(*f.MinFreeBytes) + ")"
	}
	verdict := "ok"
	if f.Below {
		verdict = "BELOW"
	}
	return withPath(func(on string) string {
		return fmt.Sprintf("free space %s%s, floor %s: %s", fl.Show(*f.FreeBytes), on, floor, verdict)
	})
}

// clock is t's time of day in st.Now's zone, the zone the window is read
// in.
func (st Status) clock(t time.Time) string { return t.In(st.Now.Location()).Format("15:04") }

// outcomeText is "failed (exit 1)", or just the outcome when no exit code
// was recorded (abandoned runs).
func (r *RunInfo) outcomeText() string {
	if r.ExitCode == nil {
		return r.Outcome
	}
	return fmt.Sprintf("%s (exit %d)", r.Outcome, *r.ExitCode)
}

func (st Status) at(t time.Time) string { return stamp(t, st.Now) }

func (st Status) ago(t time.Time) string {
	d := st.Now.Sub(t)
	if d < 0 {
		return "just now"
	}
	return human(d) + " ago"
}

// stamp prints t to the minute in now's zone.
func stamp(t, now time.Time) string {
	return t.In(now.Location()).Format("2006-01-02 15:04 MST")
}

func percent(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

// human prints a duration with its two largest units: 45s, 3m10s, 1h12m,
// 2d3h.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	hours, s := s/3600, s%3600
	mins, secs := s/60, s%60
	switch {
	case days > 0:
		return trimZero(fmt.Sprintf("%dd%dh", days, hours))
	case hours > 0:
		return trimZero(fmt.Sprintf("%dh%dm", hours, mins))
	case mins > 0:
		return trimZero(fmt.Sprintf("%dm%ds", mins, secs))
	}
	return fmt.Sprintf("%ds", secs)
}

// trimZero drops a zero second unit: 6h0m → 6h.
func trimZero(s string) string {
	for _, u := range []string{"h", "m", "s"} {
		if strings.HasSuffix(s, "0"+u) && len(s) > 2 && (s[len(s)-3] < '0' || s[len(s)-3] > '9') {
			return s[:len(s)-2]
		}
	}
	return s
}

// clip makes free text one line of at most maxTextRune runes.
func clip(s string) string { return clipTo(s, maxTextRune) }

// clipTo makes free text one line of at most n runes.
func clipTo(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
