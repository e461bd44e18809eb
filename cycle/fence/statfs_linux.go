package fence

import (
	"errors"
	"math/bits"

	"golang.org/x/sys/unix"
)

// statfs returns the bytes available to unprivileged users and the size
// of the filesystem holding path.
func statfs(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	for {
		err = unix.Statfs(path, &st)
		// A network or FUSE filesystem can be interrupted by a signal
		// mid-call; that is no answer, so ask again.
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return 0, 0, err
	}
	// Block counts are in fragment-size units; f_frsize is 0 on old
	// kernels, where f_bsize is the unit (as glibc's statvfs does).
	size := uint64(st.Frsize)
	if st.Frsize <= 0 {
		size = uint64(st.Bsize)
	}
	return saturatingMul(st.Bavail, size), saturatingMul(st.Blocks, size), nil
}

// saturatingMul is a·b, or the largest uint64 when that overflows (a
// corrupt statfs answer must not wrap round to a small number).
func saturatingMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}
