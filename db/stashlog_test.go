package db_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stashgen/stashgen/db"
)

func logEntries(n, size int) []db.LogEntry {
	at := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	out := make([]db.LogEntry, n)
	for i := range out {
		msg := fmt.Sprintf("entry %03d ", i)
		out[i] = db.LogEntry{At: at.Add(time.Duration(i) * time.Millisecond), Level: "Error", Message: msg + strings.Repeat("x", max(0, size-len(msg)))}
	}
	return out
}

func TestNewest_KeepsTheNewestWithinTheCaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        []db.LogEntry
		wantFirst string // prefix of the oldest entry kept
		wantN     int
	}{
		{"none", nil, "", 0},
		{"under both caps", logEntries(3, 100), "entry 000", 3},
		{"entry cap", logEntries(150, 100), "entry 050", db.JobLogEntries},
		// 3,000 bytes each: 21 fit in 64 KiB (63,000), 22 do not.
		{"byte cap", logEntries(30, 3000), "entry 009", 21},
		// Each cut to JobLogMessage: sixteen fit.
		{"long messages are cut, not dropped", logEntries(3, 40<<10), "entry 000", 3},
		{"one message over the whole cap", logEntries(1, 100<<10), "entry 000", 1},
		{"many long messages", logEntries(40, 10<<10), "entry 024", db.JobLogBytes / db.JobLogMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]db.LogEntry(nil), tt.in...)
			got := db.Newest(tt.in)
			if len(got) != tt.wantN {
				t.Fatalf("kept %d entries, want %d", len(got), tt.wantN)
			}
			size := 0
			for i, e := range got {
				size += len(e.Message)
				if len(e.Message) > db.JobLogMessage || !utf8.ValidString(e.Message) {
					t.Errorf("entry %d: %d bytes (cap %d), valid UTF-8 %v", i, len(e.Message), db.JobLogMessage, utf8.ValidString(e.Message))
				}
				if i > 0 && !got[i-1].At.Before(e.At) {
					t.Errorf("entry %d is not newer than the one before it", i)
				}
			}
			if size > db.JobLogBytes {
				t.Errorf("kept %d bytes, cap %d", size, db.JobLogBytes)
			}
			if tt.wantN > 0 && !strings.HasPrefix(got[0].Message, tt.wantFirst) {
				t.Errorf("oldest kept %.12q, want %q", got[0].Message, tt.wantFirst)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Newest changed its argument at %d", i)
				}
			}
		})
	}
}

func TestNewest_CutsAtARuneBoundary(t *testing.T) {
	t.Parallel()
	msg := strings.Repeat("é", db.JobLogMessage) // two bytes each
	got := db.Newest([]db.LogEntry{{Message: msg}})
	if len(got) != 1 || !utf8.ValidString(got[0].Message) || !strings.HasSuffix(got[0].Message, "[...]") || len(got[0].Message) > db.JobLogMessage {
		t.Fatalf("cut to %d bytes, valid %v, ends %q", len(got[0].Message), utf8.ValidString(got[0].Message), got[0].Message[len(got[0].Message)-8:])
	}
}

func TestStore_SaveJobLogKeepsTheNewest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newEnv(t)
	job := foreignJob(t, e, "completed")
	if err := e.s.SaveJobLog(ctx, job, logEntries(150, 100)); err != nil {
		t.Fatalf("SaveJobLog: %v", err)
	}
	logs, err := e.s.JobLogs(ctx, []int64{job}, 2)
	if err != nil {
		t.Fatalf("JobLogs: %v", err)
	}
	l := logs[job]
	if l.Count != db.JobLogEntries || len(l.First) != 2 || !strings.HasPrefix(l.First[0].Message, "entry 050") || !strings.HasPrefix(l.First[1].Message, "entry 051") {
		t.Fatalf("kept %d entries, first %+v; want %d from entry 050", l.Count, l.First, db.JobLogEntries)
	}
	if n := scalar[int64](t, e, `SELECT max(length(message)) FROM job_log WHERE job_id = $1`, job); n != 100 {
		t.Errorf("longest message %d bytes, want 100", n)
	}
}
