package cycle_test

import (
	"context"
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
