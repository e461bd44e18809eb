package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/notify"
)

// Write prints v, a Status or a History, for a terminal or as JSON.
func Write(w io.Writer, v any, asJSON bool) error {
	if asJSON {
		return WriteJSON(w, v)
	}
	switch v := v.(type) {
	case Status:
		return WriteStatus(w, v)
	case History:
		return WriteHistory(w, v)
	}
	return fmt.Errorf("report: cannot print %T as text", v)
}

// SceneIDs parses the scene ids given on the command line.
func SceneIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, s := range args {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("scene id %q: want a positive integer (the number in Stash's scene URL)", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// WriteReset says what `stashgen reset` did: done are the ids of ids that
// were in the database.
func WriteReset(w io.Writer, ids, done []int64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reset %d of %d scenes: they are checked, and generated if still incomplete, on the next run\n", len(done), len(ids))
	if len(done) < len(ids) {
		known := map[int64]bool{}
		for _, id := range done {
			known[id] = true
		}
		var unknown []string
		for _, id := range ids {
			if !known[id] {
				unknown = append(unknown, strconv.FormatInt(id, 10))
			}
		}
		fmt.Fprintf(&b, "not in the database (not synced yet, or deleted in Stash): %s\n", strings.Join(unknown, ", "))
	}
	return write(w, b.String())
}

// WriteConfigCheck says that the configuration is valid, and warns on
// stderr about a file others can read that holds a secret.
func WriteConfigCheck(stdout, stderr io.Writer, cfg *config.Config) error {
	file := cfg.File
	if file == "" {
		file = "no file (defaults, environment and flags)"
	}
	if err := write(stdout, "configuration is valid: "+file+"\n"); err != nil {
		return err
	}
	if cfg.File != "" {
		if warning := config.Permissions(cfg.File); warning != "" {
			return write(stderr, "stashgen: warning: "+warning+"\n")
		}
	}
	return nil
}

// WriteConfig prints every key's effective value and where it came from.
// Secrets show as <redacted>; the ping URL shows its scheme and host only.
func WriteConfig(w io.Writer, cfg *config.Config, src config.Sources) error {
	file := cfg.File
	if file == "" {
		file = "(none found)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# config file: %s\n", file)
	for _, en := range cfg.Entries() {
		v := en.Value
		if en.Key == "notify.ping_url" && v != "" {
			v = notify.Redact(v) // the path is the check's secret
		}
		fmt.Fprintf(&b, "%-30s = %-40s # %s\n", en.Key, v, src[en.Key])
	}
	return write(w, b.String())
}
