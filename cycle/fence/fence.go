// Package fence decides whether a run may start generating now: inside the
// maintenance window ("only at night") and above the free-space floor
// ("never below 50 GiB free"). Generating previews and sprites is hours of
// CPU and can fill a disk, so users fence it with two lines of config; a run
// outside the fence stands aside (exit 75) and the next one tries again.
//
// The package only decides and explains. It does not sleep, log or exit:
// the run turns its errors into an outcome.
package fence

import "time"

// ExitTempFail is the exit status of a run that stands aside (EX_TEMPFAIL,
// cycle.ExitTempFail): the fence is a reason to try again later, not a
// failure. Declared here because cycle imports fence, not the reverse.
const ExitTempFail = 75

// Fence is the two conditions together, as the configuration gives them.
// The zero Fence lets every run through.
type Fence struct {
	Window Window
	Floor  Floor
	// Path is where Floor is measured: the folder Stash writes generated
	// files to, as seen from this host. "" when Floor is zero.
	Path string
	// Measure reads the free space of a path; nil is Measure (statfs).
	// Tests give it a disk of the size they need.
	Measure func(path string) (Space, error) `json:"-"`
}

// Check returns nil when a run may start generating at now, a
// *ClosedError outside the window, a *LowSpaceError below the floor, or
// the error of measuring Path. The window comes first: it costs no I/O,
// and outside it the free space does not matter.
func (f Fence) Check(now time.Time) error {
	if err := f.Window.Check(now); err != nil {
		return err
	}
	if f.Floor.IsZero() {
		return nil
	}
	s, err := f.Space()
	if err != nil {
		return err
	}
	if f.Floor.Below(s) {
		return &LowSpaceError{Space: s, Floor: f.Floor}
	}
	return nil
}

// Space measures Path with Measure, or with statfs (the package's
// Measure) when that is nil.
func (f Fence) Space() (Space, error) {
	if f.Measure != nil {
		return f.Measure(f.Path)
	}
	return Measure(f.Path)
}
