//go:build !linux

package fence

import (
	"errors"
	"fmt"
	"runtime"
)

// statfs is not implemented off Linux, where statfs(2)'s fields differ
// from system to system; a configured floor then fails at start instead of
// never tripping.
func statfs(string) (free, total uint64, err error) {
	return 0, 0, fmt.Errorf("%w on %s", errors.ErrUnsupported, runtime.GOOS)
}
