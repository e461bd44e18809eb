package console

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stashgen/stashgen/stash"
)

func ptr[T any](v T) *T { return &v }

func TestRender(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		job     stash.Job
		elapsed time.Duration
		p0      float64
		want    string
	}{
		{stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.25)}, 190 * time.Second, 0,
			"stash job 7: RUNNING [#####...............]  25% · elapsed 3:10 · ETA 9:30"},
		{stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.75)}, time.Hour, 0.5,
			"stash job 7: RUNNING [###############.....]  75% · elapsed 1:00:00 · ETA 1:00:00"},
		{stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.5)}, time.Minute, 0.5,
			"stash job 7: RUNNING [##########..........]  50% · elapsed 1:00 · ETA -"},
		{stash.Job{ID: "8", Status: stash.JobReady}, 5 * time.Second, 0,
			"stash job 8: READY · elapsed 0:05"},
	} {
		if got := Render(tt.job, tt.elapsed, tt.p0); got != tt.want {
			t.Errorf("Render = %q\n          want %q", got, tt.want)
		}
	}
}

func TestLine_KeepsProgressBelowTheLog(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	clock := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	l := New(&out)
	l.Now = func() time.Time { return clock }

	if _, err := io.WriteString(l, "before\n"); err != nil {
		t.Fatal(err)
	}
	l.Update(stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.0)})
	clock = clock.Add(time.Minute)
	l.Update(stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.5)})
	if _, err := io.WriteString(l, "during\n"); err != nil {
		t.Fatal(err)
	}
	l.Update(stash.Job{ID: "7", Status: stash.JobFinished, Progress: ptr(1.0)})
	if _, err := io.WriteString(l, "after\n"); err != nil {
		t.Fatal(err)
	}
	l.Close()

	bar := "stash job 7: RUNNING [##########..........]  50% · elapsed 1:00 · ETA 1:00"
	want := "before\n" +
		clearLine + "stash job 7: RUNNING [....................]   0% · elapsed 0:00 · ETA -" +
		clearLine + bar +
		clearLine + "during\n" + bar +
		clearLine + // the job ended: the line goes
		"after\n"
	if got := out.String(); got != want {
		t.Fatalf("terminal got\n%q\nwant\n%q", got, want)
	}
}

func TestLine_RedrawsWhileWaiting(t *testing.T) {
	t.Parallel()
	w := &notifyingWriter{wrote: make(chan struct{}, 100)}
	l := New(w)
	l.Every = time.Millisecond
	l.Update(stash.Job{ID: "7", Status: stash.JobRunning, Progress: ptr(0.1)})
	for range 3 { // the first draw, then two redraws by the ticker alone
		select {
		case <-w.wrote:
		case <-time.After(30 * time.Second):
			t.Fatal("the line was never redrawn")
		}
	}
	l.Close()
	if got := w.String(); !strings.HasSuffix(got, clearLine) {
		t.Fatalf("Close left the line on screen: %q", got[max(0, len(got)-80):])
	}
}

// notifyingWriter tells the test about each write.
type notifyingWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *notifyingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *notifyingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestIsTerminal_NotAFile(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("a regular file is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Fatal("a pipe is a terminal")
	}
}
