package config

import (
	"errors"
	"io/fs"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoad_FenceAndReverify(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the free-space floor is measured on Linux only")
	}
	dir := t.TempDir()
	tests := []struct {
		name     string
		file     string
		window   string // Fence.Window.String()
		floor    string // Fence.Floor.String()
		path     string // Fence.Path
		reverify time.Duration
	}{
		{"defaults", "", "", "", "", 7 * 24 * time.Hour},
		{"window", "[generate]\nwindow = \"01:00-07:00\"\n", "01:00-07:00", "", "", 7 * 24 * time.Hour},
		{"window across midnight", "[generate]\nwindow = \"22:00-00:00\"\n", "22:00-00:00", "", "", 7 * 24 * time.Hour},
		{"window loosely written", "[generate]\nwindow = \" 1:00 - 7:00 \"\n", "01:00-07:00", "", "", 7 * 24 * time.Hour},
		{"window empty", "[generate]\nwindow = \"\"\n", "", "", "", 7 * 24 * time.Hour},
		{"size floor", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"1 mib\"\n", "", "1MiB", dir, 7 * 24 * time.Hour},
		{"percent floor", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"2.5%\"\n", "", "2.5%", dir, 7 * 24 * time.Hour},
		{"reverify off", "[check]\nreverify_after = 0\n", "", "", "", 0},
		{"reverify shorter than a run", "[check]\nreverify_after = 1\n", "", "", "", time.Second},
		{"reverify 90 days", "[check]\nreverify_after = 7776000\n", "", "", "", 90 * 24 * time.Hour},
		{"reverify a year", "[check]\nreverify_after = 31536000\n", "", "", "", 365 * 24 * time.Hour},
		{"reverify in milliseconds is only rarer", "[check]\nreverify_after = 604800000\n", "", "", "", 604800000 * time.Second},
		{"reverify beyond a duration is never", "[check]\nreverify_after = 9223372036854775807\n", "", "", "", math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, src, _, err := loadString(t, tt.file, nil, FlagOverrides{})
			if err != nil {
				t.Fatal(err)
			}
			f := cfg.Generate.Fence
			if f.Window.String() != tt.window || f.Floor.String() != tt.floor || f.Path != tt.path || cfg.Check.Reverify() != tt.reverify {
				t.Errorf("got window %q floor %q path %q reverify %v", f.Window, f.Floor, f.Path, cfg.Check.Reverify())
			}
			if tt.file == "" && (*src)["generate.window"] != SourceDefault {
				t.Errorf("source of generate.window is %s", (*src)["generate.window"])
			}
			if tt.window != "" && (*src)["generate.window"] != SourceFile {
				t.Errorf("source of generate.window is %s, want file", (*src)["generate.window"])
			}
		})
	}
}

func TestLoad_FenceErrors(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the free-space floor is measured on Linux only")
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		file string
		key  string
		line int
		msg  string // exact Msg
		hint string // substring of the hint
	}{
		{"window not a time", "[generate]\nwindow = \"1am-7am\"\n", "generate.window", 2,
			`must be HH:MM-HH:MM in 24-hour local time; the start time "1am" is not written like 07:00 (got "1am-7am")`,
			`window = "01:00-07:00"`},
		{"window no dash", "[generate]\n\nwindow = \"01:00\"\n", "generate.window", 3,
			`must be HH:MM-HH:MM in 24-hour local time; missing the - between start and end (got "01:00")`, `"22:00-06:00" to span midnight`},
		{"window hour", "[generate]\nwindow = \"25:00-07:00\"\n", "generate.window", 2,
			`must be HH:MM-HH:MM in 24-hour local time; hour 25 is not 00 to 23 (got "25:00-07:00")`, `or "" to allow any time`},
		{"window 24:00", "[generate]\nwindow = \"22:00-24:00\"\n", "generate.window", 2,
			`must be HH:MM-HH:MM in 24-hour local time; 24:00 is not a time of day; write 00:00 for midnight (got "22:00-24:00")`, `window = "01:00-07:00"`},
		{"window start is end", "[generate]\nwindow = \"03:00-03:00\"\n", "generate.window", 2,
			`must be HH:MM-HH:MM in 24-hour local time; the start and end are both 03:00, which is either never or always; for any time write "" (got "03:00-03:00")`,
			`or "" to allow any time`},

		{"floor bare number", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"50\"\n", "generate.min_free_space", 3,
			`must be a size like "50GiB" or a percentage like "10%"; 50 what? there is no unit: write 50GiB, 50GB or 50% (got "50")`,
			`min_free_space = "50GiB" (50·1024³ bytes), "50GB" (50·1000³) or "10%"`},
		{"floor ambiguous unit", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"50G\"\n", "generate.min_free_space", 3,
			`must be a size like "50GiB" or a percentage like "10%"; unit "G" is ambiguous: write GiB (powers of 1024) or GB (powers of 1000) (got "50G")`,
			`or "" for no floor`},
		{"floor 100%", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"100%\"\n", "generate.min_free_space", 3,
			`must be a size like "50GiB" or a percentage like "10%"; a percentage must be below 100% (got "100%")`, `"10%" of the filesystem`},
		{"floor zero", "[generate]\nfree_space_path = \"" + dir + "\"\nmin_free_space = \"0GiB\"\n", "generate.min_free_space", 3,
			`must be a size like "50GiB" or a percentage like "10%"; a floor of 0 is no floor; write "" for none (got "0GiB")`, `or "" for no floor`},

		{"path without floor", "[generate]\nfree_space_path = \"" + dir + "\"\n", "generate.free_space_path", 2,
			`is set (got "` + dir + `") but generate.min_free_space is not, so there is no floor to keep`,
			`add min_free_space = "50GiB" (or "10%") to [generate], or remove free_space_path`},
		{"floor without path", "[generate]\nmin_free_space = \"50GiB\"\n", "generate.min_free_space", 2,
			`is set (got "50GiB") but generate.free_space_path is not, so there is nowhere to measure it`,
			`add free_space_path to [generate]: the folder where Stash writes generated files, as seen from this host, e.g. free_space_path = "/srv/stash/generated"`},
		{"relative path", "[generate]\nfree_space_path = \"srv/generated\"\nmin_free_space = \"50GiB\"\n", "generate.free_space_path", 2,
			`must be an absolute path (got "srv/generated")`, `give the full path of the folder where Stash writes generated files`},
		{"missing path", "[generate]\nfree_space_path = \"" + missing + "\"\nmin_free_space = \"50GiB\"\n", "generate.free_space_path", 2,
			"measure free space on " + missing + ": no such file or directory", "create the folder"},
		{"path with no size", "[generate]\nfree_space_path = \"/proc\"\nmin_free_space = \"10%\"\n", "generate.free_space_path", 2,
			"measure free space on /proc: the filesystem reports a size of 0, so its free space cannot be known", "point it at a folder on the disk"},

		{"reverify negative", "[check]\nreverify_after = -1\n", "check.reverify_after", 2,
			"must be 0 (off) or a number of seconds (got -1)", "reverify_after = 604800"},

		{"window as number", "[generate]\nwindow = 1\n", "generate.window", 2,
			"must be a quoted string (got a whole number)", `window = "01:00-07:00"`},
		{"floor as number", "[generate]\nmin_free_space = 50\n", "generate.min_free_space", 2,
			"must be a quoted string (got a whole number)", `min_free_space = "50GiB"`},
		{"reverify as string", "[check]\nreverify_after = \"7d\"\n", "check.reverify_after", 2,
			"must be a whole number (got a string)", "write the number without quotes: reverify_after = 604800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadError(t, tt.file, tt.key, tt.line, tt.msg, tt.hint)
			// What main sees: the joined error Load returns exits 78.
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != 78 {
				t.Errorf("Load's error %v does not exit 78", err)
			}
		})
	}
}

func TestLoad_FenceMissingPathIsNotExist(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the free-space floor is measured on Linux only")
	}
	missing := filepath.Join(t.TempDir(), "missing")
	_, _, _, err := loadString(t, "[generate]\nfree_space_path = \""+missing+"\"\nmin_free_space = \"10%\"\n", nil, FlagOverrides{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) is false", err)
	}
}

func TestLoad_FloorLargerThanFilesystem(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the free-space floor is measured on Linux only")
	}
	dir := t.TempDir()
	_, _, _, err := loadString(t, "[generate]\nfree_space_path = \""+dir+"\"\nmin_free_space = \"16000000TiB\"\n", nil, FlagOverrides{})
	e := firstError(t, err)
	if e.Key != "generate.min_free_space" || e.Line != 3 ||
		!strings.HasPrefix(e.Msg, "is more than the whole filesystem at "+dir+", ") ||
		!strings.HasSuffix(e.Msg, `iB (got "16000000TiB")`) ||
		!strings.Contains(e.HintText(), `"10%"`) {
		t.Errorf("got %q, hint %q", err, e.HintText())
	}
}

func TestLoad_FenceReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, _, _, err := loadString(t, "[generate]\nwindow = \"7-1\"\nmin_free_space = \"lots\"\n[check]\nreverify_after = -5\n", nil, FlagOverrides{})
	e := firstError(t, err)
	if e.Key != "generate.window" {
		t.Errorf("first error is for %q, want generate.window", e.Key)
	}
	for _, want := range []string{
		`line 2: generate.window: must be HH:MM-HH:MM`,
		`line 3: generate.min_free_space: must be a size like "50GiB" or a percentage like "10%"; there is no number (got "lots")`,
		`line 3: generate.min_free_space: is set (got "lots") but generate.free_space_path is not`,
		`line 5: check.reverify_after: must be 0 (off) or a number of seconds (got -5)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("joined error misses %q:\n%v", want, err)
		}
	}
}

func TestLoad_FenceKeyTypos(t *testing.T) {
	t.Parallel()
	for file, hint := range map[string]string{
		"[generate]\nwindows = \"01:00-07:00\"\n": "did you mean generate.window?",
		"[generate]\nreverify_after = 0\n":        "did you mean check.reverify_after?",
		"window = \"01:00-07:00\"\n":              "did you mean generate.window?",
	} {
		_, _, _, err := loadString(t, file, nil, FlagOverrides{})
		if e := firstError(t, err); e.Msg != "unknown key" || e.HintText() != hint {
			t.Errorf("%q: got %q, hint %q; want %q", file, err, e.HintText(), hint)
		}
	}
}
