package notify

import (
	"bytes"
	"sync"
)

// Tail is an io.Writer that keeps the last lines written to it, up to a
// number of bytes: the log of a run, sent with its final ping. main tees
// the log into it after redaction, so it holds what the terminal or the
// journal got.
type Tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// NewTail keeps up to max bytes (MaxBody when max <= 0).
func NewTail(max int) *Tail {
	if max <= 0 {
		max = MaxBody
	}
	return &Tail{max: max}
}

// Write appends p, then drops whole lines from the front until the rest
// fits.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		cut := len(t.buf) - t.max
		if i := bytes.IndexByte(t.buf[cut:], '\n'); i >= 0 && cut+i+1 < len(t.buf) {
			cut += i + 1
		}
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what is kept.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}
