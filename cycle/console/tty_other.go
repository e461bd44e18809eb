//go:build !linux

package console

import "os"

// IsTerminal is false off Linux: the progress line is a convenience, and
// a wrong guess would put control characters in a captured log.
func IsTerminal(*os.File) bool { return false }
