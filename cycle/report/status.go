package report

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// StatusStore is what status reads from the database.
type StatusStore interface {
	Host() string
	Now(ctx context.Context) (time.Time, error)
	SchemaVersion(ctx context.Context) (int, error)
	RecentRuns(ctx context.Context, limit int) ([]db.Run, error)
	LastRunWith(ctx context.Context, outcomes []db.Outcome) (db.Run, error)
	LastHeartbeat(ctx context.Context) (db.Heartbeat, error)
	ActiveJobs(ctx context.Context) ([]db.Job, error)
	CountAll(ctx context.Context) (db.Counts, error)
	CheckAges(ctx context.Context, age time.Duration) (db.CheckAge, error)
	FailingScenes(ctx context.Context, limit int) ([]db.FailingScene, error)
}

// Stash is what status asks Stash: its queue, and the jobs the ledger
// names. Status works without it.
type Stash interface {
	URL() string
	QueueAndDefaults(ctx context.Context) ([]stash.Job, stash.Toggles, error)
	FindJob(ctx context.Context, id string) (stash.Job, error)
}

// Options are what status needs besides the database and Stash.
type Options struct {
	// Now is the time the verdict is made at: the database's clock in
	// production (heartbeats carry it), a fixed time in tests.
	Now time.Time
	// JobInterval is job_interval_seconds, the unit of every threshold.
	JobInterval time.Duration
	// Host is this machine's name: a heartbeat written here can be
	// checked for a live process.
	Host string
	// Alive reports whether a process runs on this host; nil means
	// kill(pid, 0).
	Alive func(pid int) bool
	// StashTimeout bounds the questions to Stash; 0 means 5 s.
	StashTimeout time.Duration
	// ReverifyAfter is check.reverify_after; 0 means off.
	ReverifyAfter time.Duration
	// Toggles are the config file's [generate] toggles: with Stash's own
	// defaults (asked with its queue, in the same request) they say which
	// files the next check probes.
	Toggles stash.Toggles
	// Fence is cfg.Generate.Fence: status shows whether the window is
	// open and the free space against the floor, and warns about runs that
	// stood aside for low disk space only while a floor is configured
	// (removing it is one of the fixes). The zero Fence shows nothing.
	Fence fence.Fence
}

// Status is everything `stashgen status` shows. The JSON field names are
// a contract for scripts: add fields, never rename them.
type Status struct {
	Now                time.Time      `json:"now"`
	JobIntervalSeconds int            `json:"job_interval_seconds"`
	Health             Health         `json:"health"`
	Database           DatabaseInfo   `json:"database"`
	LastRun            *RunInfo       `json:"last_run"`
	LastSuccess        *RunInfo       `json:"last_success"`
	Heartbeat          *HeartbeatInfo `json:"heartbeat"`
	Jobs               []JobInfo      `json:"jobs"`
	Stash              StashInfo      `json:"stash"`
	Scenes             *SceneCounts   `json:"scenes"`
	Checks             *CheckInfo     `json:"checks"`
	// Failing are not-generated scenes with the last error Stash logged
	// about them, the newest first.
	Failing []FailingScene `json:"failing"`
	Fence   *FenceInfo     `json:"fence"`
}

// FailingScene is a scene Stash failed to generate, and what it logged.
type FailingScene struct {
	ID          int64     `json:"id"`
	Attempts    int       `json:"attempts"`
	Quarantined bool      `json:"quarantined"`
	ErrorAt     time.Time `json:"error_at"` // Stash's time
	Error       string    `json:"error"`
}

// maxFailing is how many failing scenes status lists.
const maxFailing = 3

// DatabaseInfo says whether the database could be read.
type DatabaseInfo struct {
	Host          string `json:"host"`
	Reachable     bool   `json:"reachable"`
	SchemaVersion int    `json:"schema_version"`
	Error         string `json:"error"`
}

// RunInfo is one audit row.
type RunInfo struct {
	ID              int64      `json:"id"`
	Command         string     `json:"command"`
	Outcome         string     `json:"outcome"`
	ExitCode        *int       `json:"exit_code"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
	DurationSeconds float64    `json:"duration_seconds"` // so far, for a run still running
	Host            string     `json:"host"`
	PID             int        `json:"pid"`
	ScenesGenerated *int       `json:"scenes_generated"`
	StashJobID      string     `json:"stash_job_id"`
	Error           string     `json:"error"`
	// Listening: the run heard Stash's events while it followed a job
	// (true) or only polled (false); null when it followed none.
	Listening *bool `json:"listening"`
}

// ended is when the run finished, or started when it has not.
func (r *RunInfo) ended() time.Time {
	if r.FinishedAt != nil {
		return *r.FinishedAt
	}
	return r.StartedAt
}

// HeartbeatInfo is the heartbeat row and what can be told about its process.
type HeartbeatInfo struct {
	RunID      int64     `json:"run_id"`
	Phase      string    `json:"phase"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	BeatAt     time.Time `json:"beat_at"`
	AgeSeconds float64   `json:"age_seconds"`
	StartedAt  time.Time `json:"started_at"`
	// Alive says whether the process still runs; null when it ran on
	// another host, where stashgen cannot tell.
	Alive *bool `json:"alive"`
}

// JobInfo is an active ledger job (pending, running or cancelling, from
// any tool) and, when Stash answered, what Stash says of it.
type JobInfo struct {
	ID         int64      `json:"id"`
	Type       string     `json:"type"`
	Status     string     `json:"status"`
	CreatedBy  string     `json:"created_by"`
	RunID      *int64     `json:"run_id"`
	Scenes     int        `json:"scenes"`
	StartedAt  *time.Time `json:"started_at"`
	Progress   *float64   `json:"progress"` // the ledger's copy, 0..1
	StashJobID string     `json:"stash_job_id"`
	Stash      *StashJob  `json:"stash"` // null when not asked or not known to Stash
	StashError string     `json:"stash_error"`
}

// StashJob is a job as Stash reports it.
type StashJob struct {
	ID          string     `json:"id"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	Progress    *float64   `json:"progress"`
	StartTime   *time.Time `json:"start_time"`
}

// StashInfo is Stash's job queue, or why it could not be read.
type StashInfo struct {
	URL       string     `json:"url"`
	Asked     bool       `json:"asked"`
	Reachable bool       `json:"reachable"`
	Error     string     `json:"error"`
	Queue     []StashJob `json:"queue"`
}

// SceneCounts are the scenes by state.
type SceneCounts struct {
	Pending     int `json:"pending"`
	Backoff     int `json:"backoff"`
	Quarantined int `json:"quarantined"`
	Generated   int `json:"generated"`
	// ToCheck are the new, changed or reset scenes the next check probes.
	ToCheck int `json:"to_check"`
}

// CheckInfo is how fresh the generated scenes' checks are, and what the
// rolling re-verification will do about it.
type CheckInfo struct {
	OldestCheck          *time.Time `json:"oldest_check"` // null when no generated scene
	ReverifyAfterSeconds int        `json:"reverify_after_seconds"`
	Due                  int        `json:"due"`     // generated scenes checked longer ago than that
	PerRun               int        `json:"per_run"` // the most one run re-verifies
	// The next check's cost to Stash, each request a line in Stash's log
	// (a 404 at WARN): NextScenes to probe (new, changed or reset, and
	// this run's share of those due), FilesPerScene probes each at most
	// (the wanted files, by the config over Stash's defaults over the
	// built-ins; the built-ins alone when Stash did not answer), so at
	// most NextFileRequests, plus their markers' files. A scene not known
	// to be complete stops at its first 404.
	NextScenes       int `json:"next_scenes"`
	FilesPerScene    int `json:"files_per_scene"`
	NextFileRequests int `json:"next_file_requests"`
}

// FenceInfo is the maintenance window and the free-space floor as they
// stand when status looks. It is null when neither is configured; within
// it, the window's fields are zero (window "", open true, times null) when
// only a floor is, and the floor's ("" and null, below false) when only a
// window is.
type FenceInfo struct {
	Window string `json:"window"` // generate.window, "" for any time
	Open   bool   `json:"open"`   // whether a run may start now, as far as the window goes
	// ClosesAt and OpensAt are the next time the window closes and the
	// next time it opens: while it is open, OpensAt is the opening after
	// ClosesAt. Null when there is no window.
	ClosesAt *time.Time `json:"closes_at"`
	OpensAt  *time.Time `json:"opens_at"`

	FreeSpacePath string `json:"free_space_path"` // generate.free_space_path, "" for no floor
	// FreeBytes and TotalBytes are what the filesystem holding
	// FreeSpacePath reports (free: what an unprivileged user may still
	// write); null when there is no floor or it could not be measured.
	FreeBytes    *uint64 `json:"free_bytes"`
	TotalBytes   *uint64 `json:"total_bytes"`
	MinFreeSpace string  `json:"min_free_space"` // generate.min_free_space, canonical ("50GiB", "10%")
	// MinFreeBytes is the floor in bytes; null for a percentage when the
	// filesystem could not be measured.
	MinFreeBytes *uint64 `json:"min_free_bytes"`
	Below        bool    `json:"below"` // the free space is below the floor: a run would stand aside
	Error        string  `json:"error"` // why the free space could not be measured
}

// fenceInfo looks at the fence at opts.Now; nil when there is none. A
// measuring error is reported in the result, never returned: the host
// status runs on may not even see the path.
func fenceInfo(opts Options) *FenceInfo {
	f := opts.Fence
	if f.Window.Always() && f.Floor.IsZero() {
		return nil
	}
	fi := &FenceInfo{Window: f.Window.String(), Open: true}
	if !f.Window.Always() {
		now := opts.Now
		fi.Open = f.Window.Open(now)
		closes := f.Window.Closes(now)
		opens := f.Window.NextOpen(now)
		if fi.Open {
			opens = f.Window.NextOpen(closes)
		}
		fi.ClosesAt, fi.OpensAt = &closes, &opens
	}
	if f.Floor.IsZero() {
		return fi
	}
	fi.FreeSpacePath, fi.MinFreeSpace = f.Path, f.Floor.String()
	if !f.Floor.Percent() {
		fi.MinFreeBytes = ptrTo(f.Floor.Bytes(0))
	}
	sp, err := f.Space()
	if err != nil {
		fi.Error = err.Error()
		return fi
	}
	fi.FreeBytes, fi.TotalBytes = ptrTo(sp.Free), ptrTo(sp.Total)
	fi.MinFreeBytes = ptrTo(f.Floor.Bytes(sp.Total))
	fi.Below = f.Floor.Below(sp)
	return fi
}

func ptrTo[T any](v T) *T { return &v }

// recentForHealth is how many runs status reads: enough for the failure
// streak and for a run left marked running behind newer ones.
const recentForHealth = 10

// GatherStatus is Gather at the database's clock: heartbeats and runs
// carry it, so they are judged by it. openErr is why the database could
// not be opened, if it could not: the verdict is then unknown.
func GatherStatus(ctx context.Context, store StatusStore, openErr error, sc Stash, opts Options) Status {
	if openErr != nil {
		return Unreachable(opts, openErr)
	}
	if now, err := store.Now(ctx); err == nil {
		opts.Now = now.In(time.Local)
	}
	return Gather(ctx, store, sc, opts)
}

// Gather reads what status shows and decides the verdict. It never fails:
// a database it cannot read makes the verdict unknown, and a Stash it
// cannot reach is only reported. sc may be nil.
func Gather(ctx context.Context, store StatusStore, sc Stash, opts Options) Status {
	st := newStatus(opts)
	st.Database.Host = store.Host()
	alive := opts.Alive
	if alive == nil {
		alive = cycle.ProcessAlive
	}
	fail := func(err error) Status {
		st.Database.Error = err.Error()
		st.Health = Health{Level: Unknown, ExitCode: int(Unknown), Reasons: []string{"cannot read the database: " + err.Error()}}
		return st
	}

	v, err := store.SchemaVersion(ctx)
	if err != nil {
		return fail(err)
	}
	st.Database.Reachable = true
	st.Database.SchemaVersion = v
	f := facts{now: opts.Now, interval: opts.JobInterval}
	if v > 0 {
		runs, err := store.RecentRuns(ctx, recentForHealth)
		if err != nil {
			return fail(err)
		}
		for i, r := range runs {
			ri := runInfo(r, opts.Now)
			if i == 0 {
				st.LastRun = &ri
			}
			f.oldest = &ri.StartedAt
			if r.Outcome != db.OutcomeRunning {
				f.finished = append(f.finished, ri)
			} else if f.dead == nil && r.Host == opts.Host && !alive(r.PID) {
				f.dead = &ri
			}
		}
		good, err := store.LastRunWith(ctx, wentWell)
		switch {
		case err == nil:
			ri := runInfo(good, opts.Now)
			st.LastSuccess, f.lastGood = &ri, &ri
		case !errors.Is(err, db.ErrNotFound):
			return fail(err)
		}
		if !opts.Fence.Floor.IsZero() {
			disk, err := store.LastRunWith(ctx, sawDisk())
			switch {
			case err == nil:
				ri := runInfo(disk, opts.Now)
				f.sawDisk = &ri
			case !errors.Is(err, db.ErrNotFound):
				return fail(err)
			}
		}
		hb, err := store.LastHeartbeat(ctx)
		switch {
		case err == nil:
			hi := HeartbeatInfo{RunID: hb.RunID, Phase: hb.Phase, Host: hb.Host, PID: hb.PID, BeatAt: hb.BeatAt,
				AgeSeconds: seconds(opts.Now.Sub(hb.BeatAt)), StartedAt: hb.StartedAt}
			if hb.Host == opts.Host {
				a := alive(hb.PID)
				hi.Alive = &a
			}
			st.Heartbeat, f.beat = &hi, &hi
		case !errors.Is(err, db.ErrNotFound):
			return fail(err)
		}
		jobs, err := store.ActiveJobs(ctx)
		if err != nil {
			return fail(err)
		}
		for _, j := range jobs {
			st.Jobs = append(st.Jobs, JobInfo{ID: j.ID, Type: j.Type, Status: string(j.Status), CreatedBy: j.CreatedBy,
				RunID: j.RunID, Scenes: len(j.SceneIDs), StartedAt: j.StartedAt, Progress: j.Progress, StashJobID: j.StashJobID})
		}
		c, err := store.CountAll(ctx)
		if err != nil {
			return fail(err)
		}
		st.Scenes = &SceneCounts{Pending: c.Pending, Backoff: c.Backoff, Quarantined: c.Quarantined, Generated: c.Generated, ToCheck: c.ToCheck}
		if st.Checks, err = checkInfo(ctx, store, c, opts); err != nil {
			return fail(err)
		}
		failing, err := store.FailingScenes(ctx, maxFailing)
		if err != nil {
			return fail(err)
		}
		for _, f := range failing {
			st.Failing = append(st.Failing, FailingScene{ID: f.ID, Attempts: f.Attempts, Quarantined: f.Quarantined,
				ErrorAt: f.Error.At, Error: f.Error.Message})
		}
	}
	st.Health = assess(f)
	var fromStash stash.Toggles
	if sc != nil {
		fromStash = askStash(ctx, sc, &st, opts.StashTimeout)
	}
	if c := st.Checks; c != nil && st.Scenes != nil {
		c.NextScenes = st.Scenes.ToCheck
		if opts.ReverifyAfter > 0 {
			c.NextScenes += min(c.Due, c.PerRun)
		}
		c.FilesPerScene = stash.ResolveToggles(opts.Toggles, fromStash).Wanted().SceneFiles()
		c.NextFileRequests = c.NextScenes * c.FilesPerScene
	}
	return st
}

// checkInfo reads the check ages. Re-verification off: nothing is due.
func checkInfo(ctx context.Context, store StatusStore, c db.Counts, opts Options) (*CheckInfo, error) {
	age := opts.ReverifyAfter
	if age <= 0 {
		age = 100 * 365 * 24 * time.Hour
	}
	a, err := store.CheckAges(ctx, age)
	if err != nil {
		return nil, err
	}
	ci := &CheckInfo{OldestCheck: a.Oldest}
	if opts.ReverifyAfter > 0 {
		n := c.Pending + c.Backoff + c.Quarantined + c.Generated
		ci.ReverifyAfterSeconds = int(opts.ReverifyAfter / time.Second)
		ci.Due = a.Due
		ci.PerRun = int(math.Ceil(float64(n) * float64(opts.JobInterval) / float64(opts.ReverifyAfter)))
	}
	return ci, nil
}

// Unreachable is the status when the database cannot be opened at all.
func Unreachable(opts Options, err error) Status {
	st := newStatus(opts)
	st.Database.Error = err.Error()
	st.Health = Health{Level: Unknown, ExitCode: int(Unknown), Reasons: []string{"database unreachable: " + err.Error()}}
	return st
}

// newStatus is the part of the status that needs no database, the fence
// included: whether the window is open and how full the disk is do not
// depend on it.
func newStatus(opts Options) Status {
	return Status{
		Now:                opts.Now,
		JobIntervalSeconds: int(opts.JobInterval / time.Second),
		Jobs:               []JobInfo{},
		Stash:              StashInfo{Queue: []StashJob{}},
		Failing:            []FailingScene{},
		Fence:              fenceInfo(opts),
	}
}

// askStash reads Stash's queue and generate defaults, and the state of
// each ledger job that has a Stash id. Nothing it finds changes the
// verdict. It returns the defaults (none when Stash did not answer).
func askStash(ctx context.Context, sc Stash, st *Status, timeout time.Duration) stash.Toggles {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st.Stash.URL = sc.URL()
	st.Stash.Asked = true
	queue, defaults, err := sc.QueueAndDefaults(ctx)
	if err != nil {
		st.Stash.Error = err.Error()
		for i := range st.Jobs {
			if st.Jobs[i].StashJobID != "" {
				st.Jobs[i].StashError = "stash unreachable"
			}
		}
		return stash.Toggles{}
	}
	st.Stash.Reachable = true
	byID := map[string]stash.Job{}
	for _, j := range queue {
		st.Stash.Queue = append(st.Stash.Queue, stashJob(j))
		byID[j.ID] = j
	}
	for i := range st.Jobs {
		j := &st.Jobs[i]
		if j.StashJobID == "" {
			continue
		}
		sj, ok := byID[j.StashJobID]
		if !ok {
			// Not queued any more: it ended, and Stash may still remember it.
			sj, err = sc.FindJob(ctx, j.StashJobID)
			if errors.Is(err, stash.ErrJobNotFound) {
				j.StashError = "stash no longer knows this job"
				continue
			}
			if err != nil {
				j.StashError = err.Error()
				continue
			}
		}
		v := stashJob(sj)
		j.Stash = &v
	}
	return defaults
}

func stashJob(j stash.Job) StashJob {
	return StashJob{ID: j.ID, Description: j.Description, Status: string(j.Status), Progress: j.Progress, StartTime: j.StartTime}
}

func runInfo(r db.Run, now time.Time) RunInfo {
	ri := RunInfo{ID: r.ID, Command: r.Command, Outcome: string(r.Outcome), ExitCode: r.ExitCode,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Host: r.Host, PID: r.PID, ScenesGenerated: r.ScenesGenerated}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	ri.DurationSeconds = seconds(end.Sub(r.StartedAt))
	if r.StashJobID != nil {
		ri.StashJobID = *r.StashJobID
	}
	if r.Error != nil {
		ri.Error = *r.Error
	}
	ri.Listening = r.Listening
	return ri
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}
