package cycle

import (
	"testing"
	"time"
)

// A socket that drops once reconnects at once; one that keeps dropping
// soon after it opens backs off to poll_interval.
func TestAfterDrop_FlappingBacksOff(t *testing.T) {
	t.Parallel()
	poll := 30 * time.Second
	var got []time.Duration
	retry := time.Duration(0)
	for short := 1; short <= 8; short++ {
		retry = afterDrop(short, retry, poll)
		got = append(got, retry)
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, poll, poll}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits after drops 1-8 = %v, want %v", got, want)
		}
	}
}
