package report

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/stashgen/stashgen/db"
)

// HistoryStore is what history reads from the database.
type HistoryStore interface {
	SchemaVersion(ctx context.Context) (int, error)
	RecentRuns(ctx context.Context, limit int) ([]db.Run, error)
	RunActions(ctx context.Context, runIDs []int64) ([]db.RunAction, error)
	JobLogs(ctx context.Context, jobIDs []int64, first int) (map[int64]db.JobLog, error)
}

// History is what `stashgen history` shows. The JSON field names are a
// contract for scripts.
type History struct {
	Now  time.Time    `json:"now"`
	Runs []HistoryRun `json:"runs"`
}

// HistoryRun is one run with the actions of its ledger jobs, and what
// Stash logged while they ran.
type HistoryRun struct {
	RunInfo
	Actions  []ActionInfo `json:"actions"`
	StashLog []JobLogInfo `json:"stash_log"`
}

// JobLogInfo is what Stash logged (Warning and Error) while one ledger job
// ran: how many entries were kept, and the first few.
type JobLogInfo struct {
	JobID   int64          `json:"job_id"`
	Count   int            `json:"count"`
	Entries []LogEntryInfo `json:"entries"`
}

// LogEntryInfo is one entry of Stash's log.
type LogEntryInfo struct {
	At      time.Time `json:"at"` // Stash's time
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// historyLogLines is how many of a job's Stash log entries history shows.
const historyLogLines = 3

// ActionInfo is one job_actions row.
type ActionInfo struct {
	JobID      int64     `json:"job_id"`
	StashJobID string    `json:"stash_job_id"`
	Action     string    `json:"action"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// GatherHistory reads the newest limit runs, newest first.
func GatherHistory(ctx context.Context, store HistoryStore, now time.Time, limit int) (History, error) {
	h := History{Now: now, Runs: []HistoryRun{}}
	v, err := store.SchemaVersion(ctx)
	if err != nil || v == 0 {
		return h, err
	}
	runs, err := store.RecentRuns(ctx, limit)
	if err != nil {
		return h, err
	}
	ids := make([]int64, len(runs))
	at := map[int64]int{}
	for i, r := range runs {
		ids[i] = r.ID
		at[r.ID] = i
		h.Runs = append(h.Runs, HistoryRun{RunInfo: runInfo(r, now), Actions: []ActionInfo{}, StashLog: []JobLogInfo{}})
	}
	actions, err := store.RunActions(ctx, ids)
	if err != nil {
		return h, err
	}
	var jobs []int64
	runOf := map[int64]int{}
	for _, a := range actions {
		hr := &h.Runs[at[a.RunID]]
		hr.Actions = append(hr.Actions, ActionInfo{JobID: a.JobID, StashJobID: a.StashJobID, Action: string(a.Action), Reason: a.Reason, At: a.At})
		if _, seen := runOf[a.JobID]; !seen {
			runOf[a.JobID] = at[a.RunID]
			jobs = append(jobs, a.JobID)
		}
	}
	if len(jobs) == 0 {
		return h, nil
	}
	logs, err := store.JobLogs(ctx, jobs, historyLogLines)
	if err != nil {
		return h, err
	}
	for _, id := range jobs {
		l, ok := logs[id]
		if !ok {
			continue
		}
		info := JobLogInfo{JobID: id, Count: l.Count, Entries: []LogEntryInfo{}}
		for _, e := range l.First {
			info.Entries = append(info.Entries, LogEntryInfo{At: e.At, Level: e.Level, Message: e.Message})
		}
		hr := &h.Runs[runOf[id]]
		hr.StashLog = append(hr.StashLog, info)
	}
	return h, nil
}

// WriteHistory prints one line per run, then a line per ledger job with
// its actions and a line with the error, if any.
func WriteHistory(w io.Writer, h History) error {
	if len(h.Runs) == 0 {
		return write(w, "no runs recorded yet\n")
	}
	header := []string{"RUN", "COMMAND", "STARTED", "TOOK", "OUTCOME", "EXIT", "SCENES", "STASH JOB"}
	rows := [][]string{header}
	for _, r := range h.Runs {
		took := human(time.Duration(r.DurationSeconds * float64(time.Second)))
		if r.Outcome == "running" {
			took += "+"
		}
		exit, scenes, job := "-", "-", "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		if r.ScenesGenerated != nil {
			scenes = strconv.Itoa(*r.ScenesGenerated)
		}
		if r.StashJobID != "" {
			job = r.StashJobID
		}
		rows = append(rows, []string{"#" + strconv.FormatInt(r.ID, 10), r.Command, stamp(r.StartedAt, h.Now), took, r.Outcome, exit, scenes, job})
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	indent := strings.Repeat(" ", widths[0]+2)
	var b strings.Builder
	for i, row := range rows {
		for c, cell := range row {
			if c == len(row)-1 {
				b.WriteString(cell)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[c], cell)
		}
		b.WriteString("\n")
		if i == 0 {
			continue
		}
		r := h.Runs[i-1]
		for _, l := range actionLines(r.Actions, h.Now) {
			b.WriteString(indent + l + "\n")
		}
		for _, l := range r.StashLog {
			fmt.Fprintf(&b, "%sjob #%d: stash logged %d warnings and errors", indent, l.JobID, l.Count)
			if l.Count > len(l.Entries) {
				fmt.Fprintf(&b, " (the first %d)", len(l.Entries))
			}
			b.WriteString(":\n")
			for _, e := range l.Entries {
				// Longer than other text: the file ffmpeg names comes late.
				b.WriteString(indent + "  " + clipTo(e.Level+" "+e.At.In(h.Now.Location()).Format("15:04:05")+" "+e.Message, 2*maxTextRune) + "\n")
			}
		}
		if r.Error != "" {
			b.WriteString(indent + "error: " + clip(r.Error) + "\n")
		}
	}
	return write(w, b.String())
}

// actionLines groups actions by ledger job: "job #9 (stash 7): LAUNCHED
// 08:52:01 batch 1 of run 41: 3 scenes; FINISHED 08:55:10 3 of 3 scenes
// complete".
func actionLines(actions []ActionInfo, now time.Time) []string {
	var order []int64
	byJob := map[int64][]string{}
	stashIDs := map[int64]string{}
	for _, a := range actions {
		if _, seen := byJob[a.JobID]; !seen {
			order = append(order, a.JobID)
		}
		s := a.Action + " " + a.At.In(now.Location()).Format("15:04:05")
		if a.Reason != "" {
			s += " " + clip(a.Reason)
		}
		byJob[a.JobID] = append(byJob[a.JobID], s)
		stashIDs[a.JobID] = a.StashJobID
	}
	var out []string
	for _, id := range order {
		name := fmt.Sprintf("job #%d", id)
		if s := stashIDs[id]; s != "" {
			name += " (stash " + s + ")"
		}
		out = append(out, name+": "+strings.Join(byJob[id], "; "))
	}
	return out
}
