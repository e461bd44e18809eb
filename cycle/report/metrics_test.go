package report

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle/fence"
	"github.com/stashgen/stashgen/db"
)

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// validateExposition checks text against the rules of Prometheus' text
// format that `promtool check metrics` enforces: every sample belongs to a
// family announced by one HELP and one TYPE line before it, names are
// valid, label values are quoted and escaped, counters end in _total,
// families are not split, and no series appears twice. It returns the
// samples by series.
func validateExposition(text string) (map[string]float64, error) {
	types := map[string]string{}
	helps := map[string]bool{}
	closed := map[string]bool{}
	series := map[string]float64{}
	current := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		if line == "" {
			return nil, fail("empty line")
		}
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			f := strings.SplitN(rest, " ", 3)
			if len(f) < 3 || (f[0] != "HELP" && f[0] != "TYPE") {
				return nil, fail("want # HELP name text or # TYPE name type")
			}
			name := f[1]
			if !metricName.MatchString(name) {
				return nil, fail("bad metric name")
			}
			if closed[name] {
				return nil, fail("family %s split", name)
			}
			if current != name && current != "" {
				closed[current] = true
			}
			current = name
			if f[0] == "HELP" {
				if helps[name] {
					return nil, fail("second HELP")
				}
				helps[name] = true
				continue
			}
			if _, dup := types[name]; dup {
				return nil, fail("second TYPE")
			}
			switch f[2] {
			case "counter":
				if !strings.HasSuffix(name, "_total") {
					return nil, fail("counter not ending in _total")
				}
			case "gauge", "untyped", "histogram", "summary":
			default:
				return nil, fail("unknown type %s", f[2])
			}
			types[name] = f[2]
			continue
		}
		if strings.HasPrefix(line, "#") {
			return nil, fail("comment without a space")
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		if name != current || types[name] == "" || !helps[name] {
			return nil, fail("sample without HELP and TYPE just before it")
		}
		key := name + "{" + labels + "}"
		if _, dup := series[key]; dup {
			return nil, fail("duplicate series")
		}
		series[key] = value
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("text does not end with a newline")
	}
	for name := range types {
		found := false
		for k := range series {
			found = found || strings.HasPrefix(k, name+"{")
		}
		if !found {
			return nil, fmt.Errorf("family %s has no samples", name)
		}
	}
	return series, nil
}

// parseSample splits `name{a="x",b="y"} value` and checks each part.
func parseSample(line string) (name, labels string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", "", 0, fmt.Errorf("no value")
	}
	name, rest := line[:i], line[i:]
	if !metricName.MatchString(name) {
		return "", "", 0, fmt.Errorf("bad metric name %q", name)
	}
	var pairs []string
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for !strings.HasPrefix(rest, "}") {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || !labelName.MatchString(rest[:eq]) || len(rest) < eq+2 || rest[eq+1] != '"' {
				return "", "", 0, fmt.Errorf("bad label in %q", rest)
			}
			ln := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			for {
				if rest == "" {
					return "", "", 0, fmt.Errorf("unterminated label value")
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\n' {
					return "", "", 0, fmt.Errorf("raw newline in label value")
				}
				if c == '\\' {
					if rest == "" || !strings.ContainsRune(`\"n`, rune(rest[0])) {
						return "", "", 0, fmt.Errorf("bad escape in label value")
					}
					v.WriteByte(c)
					c = rest[0]
					rest = rest[1:]
				}
				v.WriteByte(c)
			}
			pairs = append(pairs, ln+"="+v.String())
			rest = strings.TrimPrefix(rest, ",")
		}
		rest = rest[1:]
	}
	if !strings.HasPrefix(rest, " ") {
		return "", "", 0, fmt.Errorf("no space before the value")
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return "", "", 0, fmt.Errorf("want a value and an optional timestamp")
	}
	value, err = strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", "", 0, fmt.Errorf("value: %v", err)
	}
	return name, strings.Join(pairs, ","), value, nil
}

func TestValidateExposition_Rejects(t *testing.T) {
	t.Parallel()
	ok := "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n"
	if _, err := validateExposition(ok); err != nil {
		t.Fatalf("valid text rejected: %v", err)
	}
	for name, bad := range map[string]string{
		"no TYPE":          "# HELP a A.\na 1\n",
		"counter name":     "# HELP a A.\n# TYPE a counter\na 1\n",
		"duplicate":        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",
		"unquoted label":   "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
		"bad escape":       "# HELP a A.\n# TYPE a gauge\na{x=\"\\q\"} 1\n",
		"bad name":         "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",
		"split family":     "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\n# HELP a A.\n",
		"no final newline": "# HELP a A.\n# TYPE a gauge\na 1",
		"not a number":     "# HELP a A.\n# TYPE a gauge\na one\n",
	} {
		if _, err := validateExposition(bad); err == nil {
			t.Errorf("%s: accepted:\n%s", name, bad)
		}
	}
}

func sampleMetrics() Metrics {
	return Metrics{
		End: now, Duration: 190*time.Second + 250*time.Millisecond, ExitCode: 1, ScenesGenerated: 12,
		FreeSpace: &fence.Space{Path: `/srv/stash "generated"`, Free: 51_754_355_917, Total: 2 << 40},
		DB: &DBMetrics{
			LastSuccess: at(time.Hour),
			Scenes:      db.Counts{Pending: 1200, Backoff: 3, Quarantined: 1, Generated: 48210},
			Runs: map[db.Outcome]int64{db.OutcomeGenerated: 40, db.OutcomeFailed: 2, db.OutcomeSkippedWindow: 17,
				db.OutcomeSkippedLowSpace: 3, "future \"outcome\"\n": 1},
		},
	}
}

func TestMetrics_Format(t *testing.T) {
	t.Parallel()
	text := sampleMetrics().Text()
	series, err := validateExposition(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want := map[string]float64{
		"stashgen_last_run_timestamp_seconds{}":                float64(now.Unix()),
		"stashgen_last_run_duration_seconds{}":                 190.25,
		"stashgen_last_run_exit_code{}":                        1,
		"stashgen_last_run_scenes_generated{}":                 12,
		"stashgen_last_success_timestamp_seconds{}":            float64(now.Add(-time.Hour).Unix()),
		`stashgen_scenes{state=pending}`:                       1200,
		`stashgen_scenes{state=backoff}`:                       3,
		`stashgen_scenes{state=quarantined}`:                   1,
		`stashgen_scenes{state=generated}`:                     48210,
		`stashgen_runs_total{outcome=generated}`:               40,
		`stashgen_runs_total{outcome=failed}`:                  2,
		`stashgen_runs_total{outcome=skipped_locked}`:          0,
		`stashgen_runs_total{outcome=skipped_window}`:          17,
		`stashgen_runs_total{outcome=cancelled_for_window}`:    0,
		`stashgen_runs_total{outcome=skipped_low_space}`:       3,
		`stashgen_runs_total{outcome=cancelled_for_low_space}`: 0,
		`stashgen_runs_total{outcome=future \"outcome\"\n}`:    1,
	}
	for k, v := range want {
		if got, ok := series[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	// The path label is escaped like any other.
	if got := series[`stashgen_free_space_bytes{path=/srv/stash \"generated\"}`]; got != 51_754_355_917 {
		t.Errorf("stashgen_free_space_bytes = %v, want 51754355917", got)
	}
	golden(t, "metrics.golden", []byte(text))

	// Every outcome has its series, zero or not.
	for _, o := range finishedOutcomes {
		if _, ok := series[`stashgen_runs_total{outcome=`+string(o)+`}`]; !ok {
			t.Errorf("no stashgen_runs_total series for %s", o)
		}
	}

	// Without the database: only what the run itself knows (the free
	// space is measured, not read), still valid.
	m := sampleMetrics()
	m.DB = nil
	series, err = validateExposition(m.Text())
	if err != nil || len(series) != 5 || series[`stashgen_free_space_bytes{path=/srv/stash \"generated\"}`] == 0 {
		t.Fatalf("metrics without the database: %v, %v\n%s", series, err, m.Text())
	}
	// No floor configured, or not measurable: no free-space series.
	m.FreeSpace = nil
	if series, err = validateExposition(m.Text()); err != nil || len(series) != 4 || strings.Contains(m.Text(), "free_space") {
		t.Fatalf("metrics without free space: %v, %v\n%s", series, err, m.Text())
	}
	m = sampleMetrics()
	m.DB.LastSuccess = nil
	if series, err = validateExposition(m.Text()); err != nil || series["stashgen_last_success_timestamp_seconds{}"] != 0 {
		t.Fatalf("never succeeded: %v, %v", series, err)
	}
}

// MeasureFence measures only a configured floor, and gives nothing for a
// path it cannot measure: the metrics then leave the series out.
func TestMeasureFence(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("fence.Measure is implemented on Linux only")
	}
	dir := t.TempDir()
	floor, err := fence.ParseFloor("1GiB")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    fence.Fence
		want bool
	}{
		{"no fence", fence.Fence{}, false},
		{"window only", fence.Fence{Window: mustFence(t, "01:00-07:00", "", "").Window}, false},
		{"floor", fence.Fence{Floor: floor, Path: dir}, true},
		{"floor on a missing path", fence.Fence{Floor: floor, Path: filepath.Join(dir, "gone")}, false},
	}
	for _, tt := range tests {
		got := MeasureFence(tt.f)
		if (got != nil) != tt.want {
			t.Errorf("%s: MeasureFence = %+v, want a value: %v", tt.name, got, tt.want)
			continue
		}
		if got != nil && (got.Path != dir || got.Total == 0 || got.Free > got.Total) {
			t.Errorf("%s: MeasureFence = %+v", tt.name, got)
		}
	}
}

func TestWriteMetricsFile_Atomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "stashgen.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteMetricsFile(path, sampleMetrics()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != sampleMetrics().Text() {
		t.Fatalf("file = %q, %v", b, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v; want 0644 so node_exporter can read it", fi.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v, %v: a temporary file was left behind", entries, err)
	}

	missing := filepath.Join(dir, "no-such-dir", "stashgen.prom")
	if err := WriteMetricsFile(missing, sampleMetrics()); err == nil || !strings.Contains(err.Error(), "write metrics file") {
		t.Fatalf("write into a missing directory = %v", err)
	}
}
