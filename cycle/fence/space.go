package fence

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strings"
)

// FloorForm is the form a floor is written in, for messages.
const FloorForm = `a size like "50GiB", "500MB" or "1.5TiB", or a percentage of the filesystem like "10%"`

// Space is what Measure found on one filesystem.
type Space struct {
	Path string
	// Free is the space an unprivileged user may still write (statfs's
	// f_bavail), which is what Stash, not running as root, can use: the
	// blocks reserved for root do not count.
	Free uint64
	// Total is the size of the filesystem.
	Total uint64
}

// ErrNoSize is Measure's error for a filesystem that reports no size at
// all (proc, sysfs, some FUSE mounts): a floor there could never trip.
var ErrNoSize = errors.New("the filesystem reports a size of 0, so its free space cannot be known")

// Measure finds the free and total space of the filesystem that holds
// path. Its errors name the path; errors.Is tells a missing path
// (fs.ErrNotExist), a forbidden one (fs.ErrPermission), ErrNoSize, and
// errors.ErrUnsupported off Linux.
func Measure(path string) (Space, error) {
	free, total, err := statfs(path)
	if err == nil && total == 0 {
		err = ErrNoSize
	}
	if err != nil {
		return Space{}, fmt.Errorf("measure free space on %s: %w", path, err)
	}
	return Space{Path: path, Free: free, Total: total}, nil
}

// A Floor is the least free space a run leaves on the filesystem: a fixed
// size or a percentage of the filesystem. The zero Floor (written "") is
// no floor.
type Floor struct {
	text  string // canonical form; "" for the zero Floor
	bytes uint64 // a size
	// A percentage is the fraction num/den of the filesystem (den is
	// 100·10^k for k decimal places; 0 for a size).
	num, den uint64
	decimal  bool // a size in powers of 1000: messages use the same units
}

// maxDecimals caps the decimal places of a floor, so a percentage's
// denominator fits in a uint64.
const maxDecimals = 9

// units maps each accepted unit, lower-cased, to its canonical spelling
// and size. Units are case-insensitive because nobody means bits or
// millibytes for a disk floor; a single letter (G) is refused because df
// -h and df -H disagree on what it means.
var units = map[string]struct {
	name string
	size uint64
}{
	"b":   {"B", 1},
	"kb":  {"kB", 1e3},
	"mb":  {"MB", 1e6},
	"gb":  {"GB", 1e9},
	"tb":  {"TB", 1e12},
	"kib": {"KiB", 1 << 10},
	"mib": {"MiB", 1 << 20},
	"gib": {"GiB", 1 << 30},
	"tib": {"TiB", 1 << 40},
}

// ParseFloor reads a size or a percentage:
//
//   - a size is a number and a unit: B; kB, MB, GB, TB (powers of 1000);
//     KiB, MiB, GiB, TiB (powers of 1024). Units are case-insensitive, a
//     space may separate them from the number ("100 GB"), and the number
//     may have decimals ("1.5TiB"; bytes are rounded down).
//   - a percentage of the filesystem's size is a number above 0 and below
//     100 followed by % ("10%", "2.5%").
//
// A bare number is an error, not bytes: "50" is far likelier to mean 50 GB
// than 50 bytes, and a 50-byte floor would silently never trip. So is a
// floor of 0: "" is how to say "no floor". "" is the zero Floor.
func ParseFloor(s string) (Floor, error) {
	if s == "" {
		return Floor{}, nil
	}
	fail := func(format string, args ...any) (Floor, error) {
		return Floor{}, &ParseError{Value: s, Reason: fmt.Sprintf(format, args...), Want: FloorForm}
	}
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	number, unit := t[:i], strings.TrimSpace(t[i:])
	intPart, frac, hasDot := strings.Cut(number, ".")
	switch {
	case strings.HasPrefix(t, "-"):
		return fail("a floor cannot be negative")
	case number == "":
		return fail("there is no number")
	case intPart == "" || hasDot && frac == "" || strings.Contains(frac, "."):
		return fail("%q is not a number like 50 or 1.5", number)
	case len(frac) > maxDecimals:
		return fail("%q has more than %d decimal places", number, maxDecimals)
	case unit == "":
		return fail("%s what? there is no unit: write %sGiB, %sGB or %s%%", number, number, number, number)
	}
	// n/scale is the number exactly.
	n, _ := new(big.Int).SetString(intPart+frac, 10)
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	canon := canonicalNumber(intPart, frac)
	if n.Sign() == 0 {
		return fail(`a floor of 0 is no floor; write "" for none`)
	}

	if unit == "%" {
		den := new(big.Int).Mul(scale, big.NewInt(100))
		if n.Cmp(den) >= 0 {
			return fail("a percentage must be below 100%%")
		}
		return Floor{text: canon + "%", num: n.Uint64(), den: den.Uint64()}, nil
	}
	u, ok := units[strings.ToLower(unit)]
	if !ok {
		switch strings.ToLower(unit) {
		case "k", "m", "g", "t":
			up := strings.ToUpper(unit)
			return fail("unit %q is ambiguous: write %siB (powers of 1024) or %sB (powers of 1000)", unit, up, up)
		}
		return fail("unknown unit %q: use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %%", unit)
	}
	b := new(big.Int).Mul(n, new(big.Int).SetUint64(u.size))
	b.Quo(b, scale)
	switch {
	case b.Sign() == 0:
		return fail("that is less than one byte")
	case !b.IsUint64():
		return fail("that is more than any filesystem holds")
	}
	return Floor{text: canon + u.name, bytes: b.Uint64(), decimal: u.size%1000 == 0}, nil
}

// canonicalNumber drops leading zeros of the whole part and trailing zeros
// of the fraction: "007.50" is "7.5".
func canonicalNumber(intPart, frac string) string {
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		return intPart
	}
	return intPart + "." + frac
}

// String is the floor as written, in canonical form ("50GiB", "1.5TB",
// "10%"); "" for the zero Floor. ParseFloor reads it back to the same
// Floor.
func (f Floor) String() string { return f.text }

// IsZero reports whether f is no floor.
func (f Floor) IsZero() bool { return f.text == "" }

// Percent reports whether f is a percentage of the filesystem.
func (f Floor) Percent() bool { return f.den != 0 }

// Bytes is the floor on a filesystem of total bytes: the size itself, or
// the percentage of total rounded down. 0 for the zero Floor.
func (f Floor) Bytes(total uint64) uint64 {
	if f.den == 0 {
		return f.bytes
	}
	// num < den, so the 128-bit product divided by den fits in 64 bits.
	hi, lo := bits.Mul64(total, f.num)
	q, _ := bits.Div64(hi, lo, f.den)
	return q
}

// Below reports whether the free space in s is below the floor. Exactly at
// the floor is not below. The zero Floor is never tripped.
func (f Floor) Below(s Space) bool {
	return !f.IsZero() && s.Free < f.Bytes(s.Total)
}

// LowSpaceError is the error a run returns when it stands aside because
// the free space is below the floor:
//
//	free space on /srv/stash/generated is 12.3 GiB, below min_free_space 50GiB
//	free space on /srv/stash/generated is 3.1 GiB of 128.0 GiB, below min_free_space 10% (12.8 GiB)
//
// The floor is shown as written in the config so it can be found there;
// the free space in the same kind of unit (GB for a floor in GB).
type LowSpaceError struct {
	Space Space
	Floor Floor
}

func (e *LowSpaceError) Error() string {
	f, s := e.Floor, e.Space
	if f.Percent() {
		return fmt.Sprintf("free space on %s is %s of %s, below min_free_space %s (%s)",
			s.Path, f.Show(s.Free), f.Show(s.Total), f, f.ShowLimit(f.Bytes(s.Total)))
	}
	return fmt.Sprintf("free space on %s is %s, below min_free_space %s", s.Path, f.Show(s.Free), f)
}

// Show formats a byte count in the floor's kind of unit (GB for a floor
// written in GB, else GiB), rounded down: free space just under the floor
// never prints as the floor itself.
func (f Floor) Show(n uint64) string {
	if f.decimal {
		return DecimalBytes(n)
	}
	return Bytes(n)
}

// ShowLimit is Show rounded to the nearest tenth, for a limit computed
// from a percentage ("10% (12.8 GiB)").
func (f Floor) ShowLimit(n uint64) string {
	u := binaryUnits
	if f.decimal {
		u = decimalUnits
	}
	return formatBytes(n, u, true)
}

// ExitCode is 75: the run stands aside until space is freed.
func (e *LowSpaceError) ExitCode() int { return ExitTempFail }

// Bytes formats a byte count for messages in powers of 1024: "512 B",
// "48.2 GiB". It rounds down, so free space just under a floor never
// prints as the floor itself.
func Bytes(n uint64) string { return formatBytes(n, binaryUnits, false) }

// DecimalBytes is Bytes in powers of 1000: "51.8 GB".
func DecimalBytes(n uint64) string { return formatBytes(n, decimalUnits, false) }

var (
	binaryUnits  = unitScale{1024, [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}}
	decimalUnits = unitScale{1000, [...]string{"kB", "MB", "GB", "TB", "PB", "EB"}}
)

type unitScale struct {
	base  uint64
	names [6]string
}

// formatBytes shows n with one decimal in the largest unit it fills,
// rounded down or, for a computed limit, to the nearest tenth.
func formatBytes(n uint64, u unitScale, nearest bool) string {
	if n < u.base {
		return fmt.Sprintf("%d B", n)
	}
	unit, i := u.base, 0
	for n/unit >= u.base && i < len(u.names)-1 {
		unit *= u.base
		i++
	}
	// Tenths of the unit: n·10/unit, in 128 bits (the high word is at most
	// 9, below unit, so Div64 cannot overflow).
	hi, lo := bits.Mul64(n, 10)
	tenths, rem := bits.Div64(hi, lo, unit)
	if nearest && rem >= unit-rem {
		tenths++
	}
	return fmt.Sprintf("%d.%d %s", tenths/10, tenths%10, u.names[i])
}
