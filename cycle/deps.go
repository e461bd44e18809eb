package cycle

import (
	"context"
	"time"

	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
)

// Stash is what a cycle needs from the Stash client.
type Stash interface {
	URL() string
	JobQueue(ctx context.Context) ([]stash.Job, error)
	QueueAndDefaults(ctx context.Context) ([]stash.Job, stash.Toggles, error)
	FindJob(ctx context.Context, id string) (stash.Job, error)
	StopJob(ctx context.Context, id string) error
	Generate(ctx context.Context, in stash.GenerateInput) (stash.Launch, error)
	GenerateDefaults(ctx context.Context) (stash.Toggles, error)
	Scenes(ctx context.Context, q stash.SceneQuery) (stash.ScenePage, error)
	SceneIDs(ctx context.Context, q stash.SceneQuery) (stash.ScenePage, error)
	Markers(ctx context.Context, q stash.MarkerQuery) (stash.MarkerPage, error)
	KnownScenes(ctx context.Context, ids []string) (map[string][]string, error)
	Probe(ctx context.Context, r stash.Resource, url string) (stash.ProbeResult, error)
	Subscribe(ctx context.Context, o stash.SubscribeOptions) (*stash.Subscription, error)
}

// Store is what a cycle needs from the database.
type Store interface {
	Host() string
	SchemaVersion(ctx context.Context) (int, error)

	StartRun(ctx context.Context, command, host string, pid int, version string) (int64, error)
	FinishRun(ctx context.Context, id int64, e db.RunEnd) error
	AbandonRun(ctx context.Context, id int64, reason string) error
	RunningRuns(ctx context.Context, except int64) ([]db.Run, error)
	GetRun(ctx context.Context, id int64) (db.Run, error)
	Beat(ctx context.Context, h db.Heartbeat) error
	LastHeartbeat(ctx context.Context) (db.Heartbeat, error)
	TryRunLock(ctx context.Context) (*db.RunLock, bool, error)
	Now(ctx context.Context) (time.Time, error)

	ActiveJobs(ctx context.Context) ([]db.Job, error)
	ActiveScans(ctx context.Context) ([]int64, error)
	LaunchJob(ctx context.Context, runID int64, sceneIDs []int64, reason string) (int64, error)
	SetStashJobID(ctx context.Context, id int64, stashID string) error
	SetProgress(ctx context.Context, id int64, p float64) error
	SetStashAddedAt(ctx context.Context, id int64, t time.Time) error
	TransitionJob(ctx context.Context, id int64, from []db.JobStatus, to db.JobStatus, action db.Action, reason, errText string) error
	AdoptJob(ctx context.Context, id, runID int64, reason string) error

	UpsertScenes(ctx context.Context, rows []db.SceneRow) error
	UpsertMarkers(ctx context.Context, rows []db.MarkerRow, resetScenes bool) error
	MaxSceneID(ctx context.Context) (int64, error)
	Cursors(ctx context.Context) (map[string]string, error)
	SetCursor(ctx context.Context, name, cursor string) error
	PendingCounts(ctx context.Context) (db.Counts, error)
	PendingScenes(ctx context.Context, limit int) ([]int64, error)
	WaitingScenes(ctx context.Context, limit int) ([]int64, error)
	UnchangedScenes(ctx context.Context, rows []db.SceneRow) (map[int64]bool, error)
	CheckCandidates(ctx context.Context, full bool, afterID int64, limit int) ([]db.SceneRef, error)
	ScenesByID(ctx context.Context, ids []int64) ([]db.SceneRef, error)
	MarkersOf(ctx context.Context, sceneIDs []int64) ([]db.MarkerRef, error)
	RecordVerdicts(ctx context.Context, vs []db.Verdict, checkedFor []string) error
	Wanted(ctx context.Context, wanted, removed []string, first bool) (int64, error)
	StaleRefs(ctx context.Context, wanted []string, afterID int64, limit int) ([]db.SceneRef, error)
	DueForReverify(ctx context.Context, age time.Duration, share float64) ([]db.SceneRef, error)
	MissingCounts(ctx context.Context) (map[string]int, error)
	SaveJobLog(ctx context.Context, jobID int64, entries []db.LogEntry) error
	SetSceneErrors(ctx context.Context, errs map[int64]db.LogEntry) error
	ListenScans(ctx context.Context) (*db.Scans, error)
	RecordAttempts(ctx context.Context, ids []int64, maxAttempts int, base time.Duration) ([]db.Attempt, error)
	DeleteScenes(ctx context.Context, ids []int64) error
	DeleteMarkers(ctx context.Context, ids []int64) error
	SweepScenes(ctx context.Context, since time.Time) (int64, error)
	Analyze(ctx context.Context) error
}

// SettingsFrom takes the settings from the configuration.
func SettingsFrom(cfg *config.Config) Settings {
	return Settings{
		PollInterval:       cfg.PollEvery(),
		HeartbeatInterval:  cfg.HeartbeatEvery(),
		UnavailableTimeout: cfg.Stash.UnavailableFor(),
		Toggles:            cfg.Generate.Toggles,
		BatchSize:          cfg.Generate.BatchSize,
		MaxAttempts:        cfg.Generate.MaxAttempts,
		Concurrency:        cfg.Check.Concurrency,
		ReverifyAfter:      cfg.Check.Reverify(),
		JobInterval:        cfg.JobInterval(),
		Listen:             true,
		Fence:              cfg.Generate.Fence,
	}
}

// Settings are the parts of the configuration a cycle decides with.
type Settings struct {
	PollInterval       time.Duration
	HeartbeatInterval  time.Duration
	UnavailableTimeout time.Duration // how long Stash may be away mid-run
	Toggles            stash.Toggles // from the config file; unset ones come from Stash
	BatchSize          int
	MaxAttempts        int
	Concurrency        int
	Backoff            time.Duration // first retry delay for an incomplete scene; doubles
	PageSize           int           // scenes/markers per Stash page
	// StopTimeout bounds the stopJob sent after a signal: the run does not
	// wait for Stash to confirm, and the ledger write gets its own time.
	StopTimeout time.Duration
	// CleanupTimeout bounds each database write or read a run makes after
	// it was interrupted, when nothing else would stop it.
	CleanupTimeout time.Duration
	// ReverifyAfter is how old a generated scene's check may get before a
	// run probes it again; 0 turns re-verification off.
	ReverifyAfter time.Duration
	// JobInterval is how often runs start: with ReverifyAfter it sets each
	// run's share of the re-verification.
	JobInterval time.Duration
	// Listen: while following a job, hear Stash's events over a websocket
	// and the ledger's scan rows over LISTEN, to yield to a scan and end
	// at once and keep what Stash logged. Off: poll only.
	Listen bool
	// Fence is where and when a run may generate: the maintenance window
	// and the free-space floor. The zero Fence lets every run through.
	Fence fence.Fence
}

func (s Settings) withDefaults() Settings {
	if s.PollInterval <= 0 {
		s.PollInterval = 30 * time.Second
	}
	if s.HeartbeatInterval <= 0 {
		s.HeartbeatInterval = 30 * time.Second
	}
	if s.UnavailableTimeout <= 0 {
		s.UnavailableTimeout = 5 * time.Minute
	}
	if s.BatchSize <= 0 {
		s.BatchSize = 500
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 5
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 4
	}
	if s.Backoff <= 0 {
		s.Backoff = time.Hour
	}
	if s.PageSize <= 0 {
		s.PageSize = 1000
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = 5 * time.Second
	}
	if s.CleanupTimeout <= 0 {
		s.CleanupTimeout = 10 * time.Second
	}
	if s.JobInterval <= 0 {
		s.JobInterval = time.Hour
	}
	return s
}
