package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/db"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

// now is the fixed clock of every rendering test.
var now = time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }
func at(d time.Duration) *time.Time { t := ago(d); return &t }
func ptr[T any](v T) *T             { return &v }
func run(id int64, o db.Outcome, started, took time.Duration, code int) RunInfo {
	r := RunInfo{ID: id, Command: "once", Outcome: string(o), StartedAt: ago(started), FinishedAt: at(started - took),
		DurationSeconds: took.Seconds(), Host: "host-a", PID: 4000 + int(id)}
	if o != db.OutcomeAbandoned {
		r.ExitCode = ptr(code)
	}
	return r
}

func TestAssess(t *testing.T) {
	t.Parallel()
	hour := time.Hour
	good := run(9, db.OutcomeGenerated, 50*time.Minute, 5*time.Minute, 0)
	beat := &HeartbeatInfo{BeatAt: ago(45 * time.Minute)}
	window := run(10, db.OutcomeSkippedWindow, 10*time.Minute, time.Second, 75)
	window.Error = "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 13h)"
	lowSpace := func(id int64, o db.Outcome, started time.Duration) RunInfo {
		r := run(id, o, started, time.Second, 75)
		r.Error = "free space on /srv/stash/generated is 12.3 GiB, below min_free_space 50GiB"
		return r
	}
	low := lowSpace(10, db.OutcomeSkippedLowSpace, 10*time.Minute)
	tests := []struct {
		name    string
		f       facts
		want    Level
		reasons []string // substrings, in order
	}{
		{"healthy", facts{finished: []RunInfo{good}, lastGood: &good, beat: beat}, Healthy, nil},
		{"stood aside counts as fine", facts{
			finished: []RunInfo{run(10, db.OutcomeSkippedBusy, 10*time.Minute, time.Second, 75), good},
			lastGood: ptr(run(10, db.OutcomeSkippedBusy, 10*time.Minute, time.Second, 75)), beat: beat}, Healthy, nil},
		{"last run failed", facts{
			finished: []RunInfo{run(10, db.OutcomeFailed, 10*time.Minute, time.Minute, 1), good},
			lastGood: &good, beat: beat}, Warning, []string{"the last run (#10) failed: failed (exit 1)"}},
		{"abandoned is a failure", facts{
			finished: []RunInfo{run(10, db.OutcomeAbandoned, 10*time.Minute, time.Minute, 0), good},
			lastGood: &good, beat: beat}, Warning, []string{"(#10) failed: abandoned"}},
		{"stale heartbeat", facts{finished: []RunInfo{good}, lastGood: &good, beat: &HeartbeatInfo{BeatAt: ago(2*hour + time.Minute)}},
			Warning, []string{"the last heartbeat is 2h1m old (more than 2 × job_interval_seconds)"}},
		{"heartbeat just fresh enough", facts{finished: []RunInfo{good}, lastGood: &good, beat: &HeartbeatInfo{BeatAt: ago(2 * hour)}}, Healthy, nil},
		{"no heartbeat", facts{finished: []RunInfo{good}, lastGood: &good}, Warning, []string{"no heartbeat recorded"}},
		{"dead run", facts{finished: []RunInfo{good}, lastGood: &good, beat: beat, dead: ptr(run(10, db.OutcomeRunning, time.Minute, 0, 0))},
			Warning, []string{"run #10 is marked running but its process (pid 4010 on host-a) is gone"}},
		{"never ran", facts{}, Critical, []string{"no run recorded yet"}},
		{"first run still running", facts{oldest: at(30 * time.Minute), beat: beat}, Healthy, nil},
		{"first run failed", facts{finished: []RunInfo{run(1, db.OutcomeError, time.Minute, time.Second, 69)}, oldest: at(time.Minute), beat: beat},
			Warning, []string{"the last run (#1) failed"}},
		{"never went well in 6 intervals", facts{finished: []RunInfo{run(7, db.OutcomeError, time.Minute, time.Second, 69)}, oldest: at(6*hour + time.Minute), beat: beat},
			Critical, []string{"no run went well in the last 6h (6 × job_interval_seconds), nor ever", "the last run (#7) failed"}},
		{"nothing good for 6 intervals", facts{
			finished: []RunInfo{run(3, db.OutcomeGenerated, 7*hour, 10*time.Minute, 0)},
			lastGood: ptr(run(3, db.OutcomeGenerated, 7*hour, 10*time.Minute, 0)), beat: &HeartbeatInfo{BeatAt: ago(6*hour + 50*time.Minute)}},
			Critical, []string{"no run went well in the last 6h (6 × job_interval_seconds); the last good one was 6h50m ago", "the last heartbeat is 6h50m old"}},
		{"three failures in a row", facts{
			finished: []RunInfo{
				run(12, db.OutcomeError, 10*time.Minute, time.Second, 69),
				run(11, db.OutcomeInterrupted, 20*time.Minute, time.Second, 143),
				run(10, db.OutcomeFailed, 30*time.Minute, time.Second, 1), good},
			lastGood: &good, beat: beat},
			Critical, []string{"the last 3 runs failed", "the last run (#12) failed: error (exit 69)"}},
		{"outside the window counts as fine", facts{finished: []RunInfo{window, good}, lastGood: &window, sawDisk: &good, beat: beat}, Healthy, nil},
		{"the window closing on a job counts as fine", facts{
			finished: []RunInfo{run(10, db.OutcomeCancelledForWindow, 10*time.Minute, time.Hour, 75), good},
			lastGood: ptr(run(10, db.OutcomeCancelledForWindow, 10*time.Minute, time.Hour, 75)),
			sawDisk:  ptr(run(10, db.OutcomeCancelledForWindow, 10*time.Minute, time.Hour, 75)), beat: beat}, Healthy, nil},
		{"stood aside for low space", facts{finished: []RunInfo{low, good}, lastGood: &good, sawDisk: &low, beat: beat},
			Warning, []string{"the last run (#10) stood aside for low disk space; it will not fix itself: free space on the disk Stash " +
				"writes generated files to, or lower min_free_space (free space on /srv/stash/generated is 12.3 GiB, below min_free_space 50GiB)"}},
		{"stopped for low space", facts{
			finished: []RunInfo{lowSpace(10, db.OutcomeCancelledForLowSpace, 10*time.Minute), good},
			lastGood: &good, sawDisk: ptr(lowSpace(10, db.OutcomeCancelledForLowSpace, 10*time.Minute)), beat: beat},
			Warning, []string{"the last run (#10) stopped for low disk space; it will not fix itself"}},
		{"low space outlasts the runs outside the window", facts{
			finished: []RunInfo{run(12, db.OutcomeSkippedWindow, 5*time.Minute, time.Second, 75), window, lowSpace(8, db.OutcomeSkippedLowSpace, 2*hour)},
			lastGood: ptr(run(12, db.OutcomeSkippedWindow, 5*time.Minute, time.Second, 75)),
			sawDisk:  ptr(lowSpace(8, db.OutcomeSkippedLowSpace, 2*hour)), beat: beat},
			Warning, []string{"the last run to check the disk space (#8) stood aside for low disk space"}},
		{"a run past the floor clears low space", facts{finished: []RunInfo{run(11, db.OutcomeGenerated, 5*time.Minute, time.Minute, 0), low},
			lastGood: ptr(run(11, db.OutcomeGenerated, 5*time.Minute, time.Minute, 0)),
			sawDisk:  ptr(run(11, db.OutcomeGenerated, 5*time.Minute, time.Minute, 0)), beat: beat}, Healthy, nil},
		{"low space is not a failure streak", facts{
			finished: []RunInfo{lowSpace(12, db.OutcomeSkippedLowSpace, 10*time.Minute), lowSpace(11, db.OutcomeCancelledForLowSpace, 70*time.Minute),
				lowSpace(10, db.OutcomeSkippedLowSpace, 130*time.Minute), good},
			lastGood: &good, sawDisk: ptr(lowSpace(12, db.OutcomeSkippedLowSpace, 10*time.Minute)), beat: beat},
			Warning, []string{"the last run (#12) stood aside for low disk space"}},
		{"low space for 6 intervals is critical", facts{
			finished: []RunInfo{lowSpace(20, db.OutcomeSkippedLowSpace, 10*time.Minute), run(3, db.OutcomeGenerated, 7*hour, 10*time.Minute, 0)},
			lastGood: ptr(run(3, db.OutcomeGenerated, 7*hour, 10*time.Minute, 0)),
			sawDisk:  ptr(lowSpace(20, db.OutcomeSkippedLowSpace, 10*time.Minute)), beat: beat},
			Critical, []string{"no run went well in the last 6h", "the last run (#20) stood aside for low disk space"}},
		{"two failures are not a streak", facts{
			finished: []RunInfo{
				run(12, db.OutcomeError, 10*time.Minute, time.Second, 69),
				run(11, db.OutcomeFailed, 20*time.Minute, time.Second, 1), good},
			lastGood: &good, beat: beat},
			Warning, []string{"the last run (#12) failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			f.now, f.interval = now, time.Hour
			if f.oldest == nil && len(f.finished) > 0 {
				f.oldest = &f.finished[len(f.finished)-1].StartedAt
			}
			h := assess(f)
			if h.Level != tt.want || h.ExitCode != int(tt.want) {
				t.Fatalf("level %v (exit %d), want %v; reasons %q", h.Level, h.ExitCode, tt.want, h.Reasons)
			}
			if len(h.Reasons) != len(tt.reasons) {
				t.Fatalf("reasons %q, want %d like %q", h.Reasons, len(tt.reasons), tt.reasons)
			}
			for i, r := range tt.reasons {
				if !strings.Contains(h.Reasons[i], r) {
					t.Fatalf("reason %d = %q, want it to contain %q", i, h.Reasons[i], r)
				}
			}
		})
	}
}

// Every outcome a run can finish with counts as exactly one of went well,
// failed, or low disk space, so none escapes the verdict; and the
// low-space rule skips exactly the runs that never measure the disk.
func TestOutcomes_Classified(t *testing.T) {
	t.Parallel()
	for _, o := range finishedOutcomes {
		n := 0
		for _, yes := range []bool{slices.Contains(wentWell, o), Failed(o), lowSpace(o)} {
			if yes {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: went well %v, failed %v, low space %v; want exactly one", o, slices.Contains(wentWell, o), Failed(o), lowSpace(o))
		}
	}
	for o, want := range map[db.Outcome]bool{
		db.OutcomeSkippedWindow: true, db.OutcomeCancelledForWindow: true, db.OutcomeSkippedLowSpace: false, db.OutcomeCancelledForLowSpace: false,
	} {
		if got := slices.Contains(wentWell, o); got != want {
			t.Errorf("wentWell has %s: %v, want %v", o, got, want)
		}
	}
	saw := sawDisk()
	for _, o := range []db.Outcome{db.OutcomeSkippedLowSpace, db.OutcomeCancelledForLowSpace, db.OutcomeGenerated, db.OutcomeCancelledForWindow, db.OutcomeSkippedBusy} {
		if !slices.Contains(saw, o) {
			t.Errorf("sawDisk lacks %s", o)
		}
	}
	for _, o := range []db.Outcome{db.OutcomeRunning, db.OutcomeSkippedWindow, db.OutcomeSkippedLocked, db.OutcomeChecked} {
		if slices.Contains(saw, o) {
			t.Errorf("sawDisk has %s, a run that never measures the disk", o)
		}
	}
}

// statuses are the status outputs kept as golden files.
func statuses() map[string]Status {
	interval := 3600
	healthy := Status{
		Now: now, JobIntervalSeconds: interval,
		Health:      Health{Level: Healthy, Reasons: []string{}},
		Database:    DatabaseInfo{Host: "db.local:5432, database stashgen", Reachable: true, SchemaVersion: 1},
		LastRun:     &RunInfo{ID: 43, Command: "once", Outcome: "running", StartedAt: ago(12 * time.Minute), DurationSeconds: 720, Host: "host-a", PID: 4242},
		LastSuccess: ptr(run(42, db.OutcomeGenerated, 72*time.Minute, 190*time.Second, 0)),
		Heartbeat:   &HeartbeatInfo{RunID: 43, Phase: "monitor", Host: "host-a", PID: 4242, BeatAt: ago(20 * time.Second), AgeSeconds: 20, StartedAt: ago(12 * time.Minute), Alive: ptr(true)},
		Jobs: []JobInfo{{ID: 9, Type: "stash_generate", Status: "running", CreatedBy: "stashgen", RunID: ptr(int64(43)), Scenes: 500,
			StartedAt: at(11 * time.Minute), Progress: ptr(0.4), StashJobID: "7",
			Stash: &StashJob{ID: "7", Description: "Generating...", Status: "RUNNING", Progress: ptr(0.45)}}},
		Stash: StashInfo{URL: "http://stash.local:9999", Asked: true, Reachable: true,
			Queue: []StashJob{{ID: "7", Description: "Generating...", Status: "RUNNING", Progress: ptr(0.45)}}},
		Scenes: &SceneCounts{Pending: 1200, Backoff: 3, Quarantined: 1, Generated: 48210, ToCheck: 40},
		Failing: []FailingScene{
			{ID: 812, Attempts: 2, ErrorAt: ago(time.Hour), Error: "error generating sprite: ffmpeg command produced no output: <-v error -y -ss 5.92 -i /media/clip.mp4 ...>"},
			{ID: 77, Quarantined: true, Attempts: 5, ErrorAt: ago(30 * time.Hour), Error: "Error generating phash: exit status 1"},
		},
		Checks: &CheckInfo{OldestCheck: at(6*24*time.Hour + 3*time.Hour), ReverifyAfterSeconds: 604800, Due: 0, PerRun: 293,
			NextScenes: 40, FilesPerScene: 3, NextFileRequests: 120},
	}
	failed := run(44, db.OutcomeFailed, 15*time.Minute, 190*time.Second, 1)
	failed.Error = "stash job 12 failed: ffmpeg exited with status 1 while generating the preview of /media/a very long path/that goes on/and on/scene.mp4"
	worst := Status{
		Now: now, JobIntervalSeconds: interval,
		Health: Health{Level: Critical, ExitCode: 2, Reasons: []string{
			"no run went well in the last 6h (6 × job_interval_seconds); the last good one was 7h ago",
			"the last 3 runs failed",
			"the last run (#44) failed: failed (exit 1)",
			"the last heartbeat is 2h10m old (more than 2 × job_interval_seconds): are runs starting?",
			"run #45 is marked running but its process (pid 99 on host-a) is gone; the next run marks it abandoned",
		}},
		Database:    DatabaseInfo{Host: "db.local:5432, database stashgen", Reachable: true, SchemaVersion: 1},
		LastRun:     &failed,
		LastSuccess: ptr(run(40, db.OutcomeNothingToDo, 7*time.Hour+time.Minute, time.Minute, 0)),
		Heartbeat:   &HeartbeatInfo{RunID: 41, Phase: "done", Host: "host-b", PID: 77, BeatAt: ago(130 * time.Minute), AgeSeconds: 7800, StartedAt: ago(140 * time.Minute)},
		Jobs: []JobInfo{
			{ID: 11, Type: "stash_generate", Status: "cancelling", CreatedBy: "stashgen", RunID: ptr(int64(44)), Scenes: 3, StashJobID: "12", StashError: "stash unreachable"},
			{ID: 12, Type: "stash_scan", Status: "running", CreatedBy: "my-script"},
			{ID: 13, Type: "stash_scan", Status: "pending", CreatedBy: "my-script"},
		},
		Stash:  StashInfo{URL: "http://stash.local:9999", Asked: true, Queue: []StashJob{}, Error: "stash unavailable at http://stash.local:9999/graphql (jobQueue): dial tcp: connection refused"},
		Scenes: &SceneCounts{Pending: 0, Backoff: 2, Quarantined: 5, Generated: 100},
		Checks: &CheckInfo{OldestCheck: at(30 * 24 * time.Hour)},
	}
	fresh := Status{
		Now: now, JobIntervalSeconds: interval,
		Health:   Health{Level: Critical, ExitCode: 2, Reasons: []string{"no run recorded yet: is the timer or cron job installed?"}},
		Database: DatabaseInfo{Host: "db.local:5432, database stashgen", Reachable: true},
		Jobs:     []JobInfo{},
		Stash:    StashInfo{URL: "http://stash.local:9999", Asked: true, Reachable: true, Queue: []StashJob{}},
	}
	unknown := Unreachable(Options{Now: now, JobInterval: time.Hour},
		errString("postgresql unavailable at db.local:5432, database stashgen: dial tcp 10.0.0.5:5432: connect: connection refused"))

	// A screen full of reasons leaves the fence line out, like the checks
	// line.
	worst.Fence = &FenceInfo{Window: "01:00-07:00", ClosesAt: at(-19 * time.Hour), OpensAt: at(-13 * time.Hour)}

	// Stood aside for low disk space, with the window open.
	lowRun := run(50, db.OutcomeSkippedLowSpace, 5*time.Minute, 300*time.Millisecond, 75)
	lowRun.Error = "free space on /srv/stash/generated is 48.2 GiB, below min_free_space 50GiB"
	lowSpace := healthy
	lowSpace.Health = Health{Level: Warning, ExitCode: 1, Reasons: []string{
		"the last run (#50) stood aside for low disk space; it will not fix itself: free space on the disk Stash writes generated files to, " +
			"or lower min_free_space (" + lowRun.Error + ")"}}
	lowSpace.LastRun = &lowRun
	lowSpace.Heartbeat = &HeartbeatInfo{RunID: 50, Phase: "done", Host: "host-a", PID: 4050, BeatAt: ago(5 * time.Minute), AgeSeconds: 300,
		StartedAt: ago(5 * time.Minute), Alive: ptr(false)}
	lowSpace.Jobs = []JobInfo{}
	lowSpace.Stash.Queue = []StashJob{}
	lowSpace.Fence = &FenceInfo{Window: "22:00-14:00", Open: true, ClosesAt: at(-2 * time.Hour), OpensAt: at(-10 * time.Hour),
		FreeSpacePath: "/srv/stash/generated", FreeBytes: ptr(uint64(51_754_355_917)) /* 48.2 GiB */, TotalBytes: ptr(uint64(2 << 40)),
		MinFreeSpace: "50GiB", MinFreeBytes: ptr(uint64(50 << 30)), Below: true}

	// Outside the window, the disk fine against a percentage floor.
	windowRun := run(51, db.OutcomeSkippedWindow, 10*time.Minute, 200*time.Millisecond, 75)
	windowRun.Error = "outside the maintenance window 01:00-07:00: it opens at 01:00 (in 13h10m)"
	window := lowSpace
	window.Health = Health{Level: Healthy, Reasons: []string{}}
	window.LastRun, window.LastSuccess = &windowRun, &windowRun
	window.Heartbeat = &HeartbeatInfo{RunID: 51, Phase: "done", Host: "host-a", PID: 4051, BeatAt: ago(10 * time.Minute), AgeSeconds: 600,
		StartedAt: ago(10 * time.Minute), Alive: ptr(false)}
	window.Fence = &FenceInfo{Window: "01:00-07:00", ClosesAt: at(-19 * time.Hour), OpensAt: at(-13 * time.Hour),
		FreeSpacePath: "/srv/stash/generated", FreeBytes: ptr(uint64(620 << 30)), TotalBytes: ptr(uint64(1862 << 30)),
		MinFreeSpace: "10%", MinFreeBytes: ptr(uint64(1862 << 30 / 10))}

	return map[string]Status{"status_healthy": healthy, "status_worst": worst, "status_fresh": fresh, "status_unknown": unknown,
		"status_low_space": lowSpace, "status_window": window}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestWriteStatus_Golden(t *testing.T) {
	t.Parallel()
	for name, st := range statuses() {
		var b bytes.Buffer
		if err := WriteStatus(&b, st); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(b.String(), "\n"); n > 15 {
			t.Errorf("%s: %d lines, want at most 15:\n%s", name, n, b.String())
		}
		for _, l := range strings.Split(b.String(), "\n") {
			if st.Database.Reachable && len([]rune(l)) > 130 {
				t.Errorf("%s: line of %d characters: %q", name, len([]rune(l)), l)
			}
		}
		golden(t, name+".golden", b.Bytes())
	}
}

// statusJSON mirrors the documented JSON of `stashgen status --json`;
// decoding with DisallowUnknownFields makes a renamed or added field fail
// here first.
type statusJSON struct {
	Now                *time.Time `json:"now"`
	JobIntervalSeconds *int       `json:"job_interval_seconds"`
	Health             *struct {
		Level    *string   `json:"level"`
		ExitCode *int      `json:"exit_code"`
		Reasons  *[]string `json:"reasons"`
	} `json:"health"`
	Database *struct {
		Host          *string `json:"host"`
		Reachable     *bool   `json:"reachable"`
		SchemaVersion *int    `json:"schema_version"`
		Error         *string `json:"error"`
	} `json:"database"`
	LastRun     *runJSON `json:"last_run"`
	LastSuccess *runJSON `json:"last_success"`
	Heartbeat   *struct {
		RunID      int64     `json:"run_id"`
		Phase      string    `json:"phase"`
		Host       string    `json:"host"`
		PID        int       `json:"pid"`
		BeatAt     time.Time `json:"beat_at"`
		AgeSeconds float64   `json:"age_seconds"`
		StartedAt  time.Time `json:"started_at"`
		Alive      *bool     `json:"alive"`
	} `json:"heartbeat"`
	Jobs *[]struct {
		ID         int64      `json:"id"`
		Type       string     `json:"type"`
		Status     string     `json:"status"`
		CreatedBy  string     `json:"created_by"`
		RunID      *int64     `json:"run_id"`
		Scenes     int        `json:"scenes"`
		StartedAt  *time.Time `json:"started_at"`
		Progress   *float64   `json:"progress"`
		StashJobID string     `json:"stash_job_id"`
		Stash      *stashJSON `json:"stash"`
		StashError string     `json:"stash_error"`
	} `json:"jobs"`
	Stash *struct {
		URL       string       `json:"url"`
		Asked     bool         `json:"asked"`
		Reachable bool         `json:"reachable"`
		Error     string       `json:"error"`
		Queue     *[]stashJSON `json:"queue"`
	} `json:"stash"`
	Scenes *struct {
		Pending     *int `json:"pending"`
		Backoff     *int `json:"backoff"`
		Quarantined *int `json:"quarantined"`
		Generated   *int `json:"generated"`
		ToCheck     *int `json:"to_check"`
	} `json:"scenes"`
	Checks *struct {
		OldestCheck          *time.Time `json:"oldest_check"`
		ReverifyAfterSeconds *int       `json:"reverify_after_seconds"`
		Due                  *int       `json:"due"`
		PerRun               *int       `json:"per_run"`
		NextScenes           *int       `json:"next_scenes"`
		FilesPerScene        *int       `json:"files_per_scene"`
		NextFileRequests     *int       `json:"next_file_requests"`
	} `json:"checks"`
	Failing *[]struct {
		ID          int64     `json:"id"`
		Attempts    int       `json:"attempts"`
		Quarantined bool      `json:"quarantined"`
		ErrorAt     time.Time `json:"error_at"`
		Error       string    `json:"error"`
	} `json:"failing"`
	Fence *fenceJSON `json:"fence"`
}

// fenceJSON is status's "fence": every field is always there when the
// object is (null when it does not apply).
type fenceJSON struct {
	Window        *string    `json:"window"`
	Open          *bool      `json:"open"`
	ClosesAt      *time.Time `json:"closes_at"`
	OpensAt       *time.Time `json:"opens_at"`
	FreeSpacePath *string    `json:"free_space_path"`
	FreeBytes     *uint64    `json:"free_bytes"`
	TotalBytes    *uint64    `json:"total_bytes"`
	MinFreeSpace  *string    `json:"min_free_space"`
	MinFreeBytes  *uint64    `json:"min_free_bytes"`
	Below         *bool      `json:"below"`
	Error         *string    `json:"error"`
}

type runJSON struct {
	ID              int64      `json:"id"`
	Command         string     `json:"command"`
	Outcome         string     `json:"outcome"`
	ExitCode        *int       `json:"exit_code"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationSeconds float64    `json:"duration_seconds"`
	Host            string     `json:"host"`
	PID             int        `json:"pid"`
	ScenesGenerated *int       `json:"scenes_generated"`
	StashJobID      string     `json:"stash_job_id"`
	Error           string     `json:"error"`
	Listening       *bool      `json:"listening"`
}

type stashJSON struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	Progress    *float64   `json:"progress"`
	StartTime   *time.Time `json:"start_time"`
}

// DecodeStatusJSON decodes strictly and checks the fields every status has.
func DecodeStatusJSON(t *testing.T, b []byte) statusJSON {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s statusJSON
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decode status JSON: %v\n%s", err, b)
	}
	if s.Now == nil || s.JobIntervalSeconds == nil || s.Health == nil || s.Health.Level == nil || s.Health.ExitCode == nil ||
		s.Health.Reasons == nil || s.Database == nil || s.Database.Reachable == nil || s.Jobs == nil || s.Stash == nil || s.Stash.Queue == nil {
		t.Fatalf("status JSON lacks a required field:\n%s", b)
	}
	if f := s.Fence; f != nil && (f.Window == nil || f.Open == nil || f.FreeSpacePath == nil || f.MinFreeSpace == nil ||
		f.Below == nil || f.Error == nil || *f.Window != "" && (f.ClosesAt == nil || f.OpensAt == nil) ||
		*f.MinFreeSpace != "" && f.MinFreeBytes == nil && *f.Error == "") {
		t.Fatalf("status JSON's fence lacks a field:\n%s", b)
	}
	return s
}

func TestWriteJSON_Status(t *testing.T) {
	t.Parallel()
	for name, st := range statuses() {
		var b bytes.Buffer
		if err := WriteJSON(&b, st); err != nil {
			t.Fatal(err)
		}
		s := DecodeStatusJSON(t, b.Bytes())
		if *s.Health.Level != st.Health.Level.String() || *s.Health.ExitCode != st.Health.ExitCode {
			t.Fatalf("%s: health %s/%d, want %s/%d", name, *s.Health.Level, *s.Health.ExitCode, st.Health.Level, st.Health.ExitCode)
		}
		if (s.Scenes == nil) != (st.Scenes == nil) || (s.LastRun == nil) != (st.LastRun == nil) || (s.Fence == nil) != (st.Fence == nil) {
			t.Fatalf("%s: scenes, last_run or fence lost:\n%s", name, b.String())
		}
		if f := s.Fence; f != nil && (*f.Below != st.Fence.Below || *f.Window != st.Fence.Window) {
			t.Fatalf("%s: fence %+v, want %+v", name, f, st.Fence)
		}
	}
	var l Level
	if err := l.UnmarshalText([]byte("critical")); err != nil || l != Critical {
		t.Fatalf("UnmarshalText(critical) = %v, %v", l, err)
	}
	if err := l.UnmarshalText([]byte("bad")); err == nil {
		t.Fatal("UnmarshalText(bad) accepted")
	}
}

func history() History {
	generated := HistoryRun{RunInfo: run(41, db.OutcomeGenerated, 3*time.Hour, 190*time.Second, 0)}
	generated.ScenesGenerated, generated.StashJobID = ptr(3), "7"
	generated.Actions = []ActionInfo{
		{JobID: 9, StashJobID: "7", Action: "LAUNCHED", Reason: "batch 1 of run 41: 3 scenes", At: ago(3*time.Hour - time.Second)},
		{JobID: 9, StashJobID: "7", Action: "FINISHED", Reason: "2 of 3 scenes complete", At: ago(3*time.Hour - 190*time.Second)},
	}
	generated.Listening = ptr(true)
	generated.StashLog = []JobLogInfo{{JobID: 9, Count: 4, Entries: []LogEntryInfo{
		{At: ago(3*time.Hour - 60*time.Second), Level: "Error", Message: "error generating sprite: ffmpeg command produced no output: <-v error -y -ss 5.92 -i /media/clip.mp4 ...>"},
		{At: ago(3*time.Hour - 61*time.Second), Level: "Warning", Message: "[generator] failed generating scene preview, trying fallback"},
		{At: ago(3*time.Hour - 62*time.Second), Level: "Error", Message: "Error generating phash: exit status 1"},
	}}}
	scan := HistoryRun{RunInfo: run(42, db.OutcomeCancelledForScan, 2*time.Hour, 95*time.Second, 75)}
	scan.ScenesGenerated, scan.StashJobID, scan.Listening = ptr(1), "8", ptr(false)
	scan.Error = "stash job 8 cancelled so a scan can run; 1 scenes finished before it stopped"
	scan.Actions = []ActionInfo{
		{JobID: 10, StashJobID: "8", Action: "LAUNCHED", Reason: "batch 1 of run 42: 500 scenes", At: ago(2*time.Hour - time.Second)},
		{JobID: 10, StashJobID: "8", Action: "CANCELLED", Reason: "1 scan jobs waiting (stash job 9)", At: ago(2*time.Hour - 80*time.Second)},
	}
	busy := HistoryRun{RunInfo: run(43, db.OutcomeSkippedBusy, time.Hour, 800*time.Millisecond, 75), Actions: []ActionInfo{}}
	busy.Error = "busy: ledger job 12 (stash_scan, running, by my-script)"
	running := HistoryRun{RunInfo: RunInfo{ID: 44, Command: "check", Outcome: "running", StartedAt: ago(90 * time.Second), DurationSeconds: 90}, Actions: []ActionInfo{}}
	// The window closed on run 40's job (issue 14's outcomes are plain
	// strings here).
	window := HistoryRun{RunInfo: run(40, db.OutcomeCancelledForWindow, 6*time.Hour, time.Hour, 75)}
	window.ScenesGenerated, window.StashJobID = ptr(120), "6"
	window.Error = "maintenance window 01:00-07:00 closed at 07:00"
	window.Actions = []ActionInfo{
		{JobID: 8, StashJobID: "6", Action: "LAUNCHED", Reason: "batch 3 of run 40: 500 scenes", At: ago(6*time.Hour - time.Second)},
		{JobID: 8, StashJobID: "6", Action: "CANCELLED", Reason: "maintenance window 01:00-07:00 closed at 07:00", At: ago(5 * time.Hour)},
	}
	return History{Now: now, Runs: []HistoryRun{running, busy, scan, generated, window}}
}

func TestWriteHistory_Golden(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteHistory(&b, history()); err != nil {
		t.Fatal(err)
	}
	golden(t, "history.golden", b.Bytes())

	b.Reset()
	if err := WriteHistory(&b, History{Now: now, Runs: []HistoryRun{}}); err != nil {
		t.Fatal(err)
	}
	if b.String() != "no runs recorded yet\n" {
		t.Fatalf("empty history = %q", b.String())
	}
}

// DecodeHistoryJSON decodes `stashgen history --json` strictly.
func DecodeHistoryJSON(t *testing.T, b []byte) []historyRunJSON {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h struct {
		Now  *time.Time        `json:"now"`
		Runs *[]historyRunJSON `json:"runs"`
	}
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("decode history JSON: %v\n%s", err, b)
	}
	if h.Now == nil || h.Runs == nil {
		t.Fatalf("history JSON lacks now or runs:\n%s", b)
	}
	for _, r := range *h.Runs {
		if r.ID == 0 || r.Command == "" || r.Outcome == "" || r.StartedAt.IsZero() || r.Actions == nil {
			t.Fatalf("history run lacks a required field: %+v\n%s", r, b)
		}
	}
	return *h.Runs
}

type historyRunJSON struct {
	runJSON
	Actions *[]struct {
		JobID      int64     `json:"job_id"`
		StashJobID string    `json:"stash_job_id"`
		Action     string    `json:"action"`
		Reason     string    `json:"reason"`
		At         time.Time `json:"at"`
	} `json:"actions"`
	StashLog *[]struct {
		JobID   int64 `json:"job_id"`
		Count   int   `json:"count"`
		Entries []struct {
			At      time.Time `json:"at"`
			Level   string    `json:"level"`
			Message string    `json:"message"`
		} `json:"entries"`
	} `json:"stash_log"`
}

func TestWriteJSON_History(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteJSON(&b, history()); err != nil {
		t.Fatal(err)
	}
	runs := DecodeHistoryJSON(t, b.Bytes())
	if len(runs) != 5 || runs[0].ID != 44 || runs[4].Outcome != "cancelled_for_window" || len(*runs[3].Actions) != 2 || (*runs[3].Actions)[1].Action != "FINISHED" {
		t.Fatalf("history JSON:\n%s", b.String())
	}
}

func TestHuman(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 190 * time.Second: "3m10s", 3 * time.Minute: "3m",
		72 * time.Minute: "1h12m", 6 * time.Hour: "6h", 10 * time.Hour: "10h", 50 * time.Hour: "2d2h", 48 * time.Hour: "2d",
		70 * time.Minute: "1h10m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

// finishedOutcomes, which the verdict, the metrics and the tests above
// walk, is exactly what the database accepts for a finished run: an
// outcome added to the CHECK but not here would escape them all.
func TestOutcomes_AreTheDatabases(t *testing.T) {
	t.Parallel()
	_, url := openStoreAt(t, true)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var def string
	if err := conn.QueryRow(t.Context(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conname = 'runs_outcome_check' AND conrelid = 'stashgen.runs'::regclass`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var accepted []string
	for _, m := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(def, -1) {
		if m[1] != string(db.OutcomeRunning) {
			accepted = append(accepted, m[1])
		}
	}
	var ours []string
	for _, o := range finishedOutcomes {
		ours = append(ours, string(o))
	}
	slices.Sort(accepted)
	slices.Sort(ours)
	if !slices.Equal(accepted, ours) {
		t.Fatalf("finishedOutcomes %v, the database's %v", ours, accepted)
	}
}
