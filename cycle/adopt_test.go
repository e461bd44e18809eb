package cycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle"
	"github.com/stashgen/stashgen/db"
	"github.com/stashgen/stashgen/stash"
	"github.com/stashgen/stashgen/stash/stashtest"
)

// addedAt is the ledger's stash_added_at of its only job.
func (e *env) addedAt() time.Time {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var at *time.Time
	if err := conn.QueryRow(context.Background(), `SELECT stash_added_at FROM stashgen.jobs`).Scan(&at); err != nil {
		e.t.Fatalf("read jobs.stash_added_at: %v", err)
	}
	if at == nil {
		e.t.Fatal("jobs.stash_added_at is NULL")
	}
	return *at
}

// awaitHang returns once the fake holds a request, or fails the test if
// the run ends first.
func (e *env) awaitHang(done <-chan cycle.Result, what string) {
	e.t.Helper()
	select {
	case <-e.fake.HangStarted():
	case res := <-done:
		e.t.Fatalf("the run ended (%s/%d: %v) before %s", res.Outcome, res.ExitCode, res.Err, what)
	case <-time.After(time.Minute): // a guard against a hung test, not a timing assertion
		e.t.Fatalf("the run never reached %s", what)
	}
}

// The launch records when Stash queued the job from the Date header of
// Stash's answer; the monitor's first findJob then replaces it with
// Stash's own addTime, which is what a later run compares to tell this job
// from a stranger with the same id. Here the two differ by seven seconds
// (more than addTimeSlack), as when Stash's answer is slow to be written.
func TestMonitor_FirstFindJobRecordsStashsAddTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, stashtest.WithScenesPerTick(1))
	// Requests are held below: a long timeout keeps a slow machine from
	// turning the hold into a timeout.
	patient, err := stash.New(stash.Options{URL: e.fake.URL(), APIKey: testKey, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.runner.Stash = patient
	e.fake.AddScenes(2)
	// The fake writes its Date header when a request arrives: holding
	// metadataGenerate before it runs and moving the clock meanwhile makes
	// the answer's Date earlier than the job's addTime.
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "metadataGenerate", Times: 1})
	e.fake.InjectFault(stashtest.Fault{Kind: stashtest.FaultHang, Field: "findJob", Times: 1})
	date := e.fake.Now()
	done := make(chan cycle.Result, 1)
	go func() { done <- e.once(context.Background()) }()

	e.awaitHang(done, "metadataGenerate")
	e.fake.Advance(7 * time.Second)
	e.fake.ReleaseHung()
	e.awaitHang(done, "its first findJob")
	var job stashtest.JobInfo
	for _, j := range e.fake.Jobs() {
		if j.Description == stash.DescGenerating {
			job = j
		}
	}
	if d := job.AddTime.Sub(date); d != 7*time.Second {
		t.Fatalf("job added at %v, %v after the answer's Date %v; the test needs 7s", job.AddTime, d, date)
	}
	// Before the first findJob: what the launch recorded, the answer's Date.
	if got := e.addedAt(); !got.Equal(date) {
		t.Fatalf("after the launch stash_added_at = %v, want the Date of Stash's answer %v", got, date)
	}
	e.fake.ReleaseHung()
	res := <-done

	e.wantResult(res, db.OutcomeGenerated, cycle.ExitOK)
	if got := e.addedAt(); !got.Equal(job.AddTime) {
		t.Fatalf("stash_added_at = %v, want Stash's addTime %v (the Date header's %v was not replaced)", got, job.AddTime, date)
	}
	e.invariants(1)
}

// A lost orphan is closed with the reason that fits: with a recorded
// Stash id that Stash no longer knows, Stash forgot it (it keeps only its
// last ten ended jobs); without one, and with no job of ours in Stash's
// queue, the run died before it recorded Stash's answer, and there is no
// id to name.
func TestReconcile_LostOrphanSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stashID, want string
		notInLog            []string
	}{
		{"stash forgot its id", "41", "lost: stash no longer reports job 41 (it keeps only the last 10 ended jobs)", nil},
		{"the run died first", "",
			"lost: the run died before it recorded Stash's answer to the launch, and no job of ours is in Stash's queue",
			[]string{"last 10", "job  "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ids := e.fake.AddScenes(2)
			e.wantResult(e.check(context.Background(), false), db.OutcomeChecked, cycle.ExitOK)
			e.orphan(tt.stashID, nil, ids...)

			e.wantResult(e.once(context.Background()), db.OutcomeGenerated, cycle.ExitOK)

			if got := e.queryString(`SELECT status || ': ' || error FROM stashgen.jobs ORDER BY id LIMIT 1`); got != "failed: "+tt.want {
				t.Fatalf("orphan = %q, want %q", got, "failed: "+tt.want)
			}
			for _, s := range tt.notInLog {
				if strings.Contains(e.log(), s) {
					t.Fatalf("the log has %q: it speaks of a job Stash forgot, or of an empty id:\n%s", s, e.log())
				}
			}
			e.invariants(3)
		})
	}
}
