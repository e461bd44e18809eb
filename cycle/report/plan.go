package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/stashgen/stashgen/cycle"
)

// WritePlanAs prints a plan as text or JSON. A plan that an error cut short
// prints as far as it got in text, and not at all as JSON (a script gets
// the exit code and the error instead of a half plan).
func WritePlanAs(w io.Writer, p cycle.Plan, asJSON bool, err error) error {
	switch {
	case asJSON && err != nil:
		return nil
	case asJSON:
		return WriteJSON(w, p)
	}
	return WritePlan(w, p)
}

// WritePlan prints what a dry run found, as far as it got.
func WritePlan(w io.Writer, p cycle.Plan) error {
	if p.Command == "check" {
		return writeCheckPlan(w, p)
	}
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-12s%s\n", label, fmt.Sprintf(format, args...))
	}
	b.WriteString("stashgen once --dry-run: nothing is written, nothing is started\n")
	line("lock file:", "%s: %s", p.LockFile, p.LockState)
	if p.SchemaVersion == 0 {
		line("database:", "%s: schema absent (a real run creates it); planning against empty tables", p.Database)
	} else {
		line("database:", "%s: schema version %d", p.Database, p.SchemaVersion)
	}
	line("stash:", "%s", p.Stash)
	if p.StandAside != "" {
		line("plan:", "stand aside (%s, exit %d): %s", p.Outcome, p.ExitCode, p.StandAside)
		return write(w, b.String())
	}
	if p.Stage < cycle.PlanBusy {
		return write(w, b.String())
	}
	if len(p.Busy) > 0 {
		line("busy:", "yes")
		for _, j := range p.Busy {
			fmt.Fprintf(&b, "  - %s\n", planJobText(j))
		}
		line("plan:", "stand aside (%s, exit %d)", p.Outcome, p.ExitCode)
		return write(w, b.String())
	}
	line("busy:", "no")
	if p.Stage < cycle.PlanDone {
		return write(w, b.String())
	}
	line("sync:", "%d scenes new or changed in stash since the last sync", p.ToSync)
	line("pending:", "%d recorded (backing off %d, quarantined %d); %d more found incomplete by this plan's probes",
		p.Recorded.Pending, p.Recorded.Backoff, p.Recorded.Quarantined, p.NewlyIncomplete)
	writeReprobe(&b, p)
	if p.Input == nil {
		line("plan:", "nothing to generate (%s, exit %d)", p.Outcome, p.ExitCode)
		return write(w, b.String())
	}
	ids := p.Input.SceneIDs
	line("plan:", "generate %d scenes in the first batch (batch_size %d); first ids: %s",
		len(ids), p.BatchSize, strings.Join(ids[:min(10, len(ids))], ", "))
	in, err := json.MarshalIndent(map[string]any{"input": p.Input}, "  ", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "metadataGenerate:\n  %s\n", in)
	return write(w, b.String())
}

func planJobText(j cycle.PlanJob) string {
	switch {
	case j.Error != "":
		return "job ledger unreadable: " + j.Error
	case j.Source == "stash":
		return fmt.Sprintf("stash job %s: %s %s", j.ID, j.Description, j.Status)
	}
	return fmt.Sprintf("ledger job %s: %s %s (by %s)", j.ID, j.Description, j.Status, j.CreatedBy)
}

func writeCheckPlan(w io.Writer, p cycle.Plan) error {
	if p.Stage < cycle.PlanDone {
		return nil
	}
	var b strings.Builder
	b.WriteString("stashgen check --dry-run: nothing is written\n")
	fmt.Fprintf(&b, "would sync:   %d scenes new or changed in stash\n", p.ToSync)
	fmt.Fprintf(&b, "would check:  %d scenes\n", p.Checked)
	fmt.Fprintf(&b, "  complete (generated=true):      %d (%d of them change)\n", p.Complete, p.BecomeGenerated)
	fmt.Fprintf(&b, "  incomplete (generated=false):   %d (%d of them change)\n", p.Incomplete, p.NewlyIncomplete)
	fmt.Fprintf(&b, "  gone from stash (rows removed): %d\n", p.Gone)
	writeReprobe(&b, p)
	return write(w, b.String())
}

// writeReprobe says which generated scenes are probed again and why, and
// what the plan's probes cost Stash.
func writeReprobe(b *strings.Builder, p cycle.Plan) {
	var why []string
	if r := p.Reprobe; r.ForToggles > 0 {
		why = append(why, fmt.Sprintf("%d verified before %s was wanted", r.ForToggles, strings.Join(r.Added, ", ")))
	}
	if r := p.Reprobe; r.ForAge > 0 {
		why = append(why, fmt.Sprintf("%d whose check is older than reverify_after (%s)", r.ForAge,
			human(time.Duration(r.ReverifyAfterSeconds)*time.Second)))
	}
	if len(why) > 0 {
		fmt.Fprintf(b, "%-12s%s\n", "re-probe:", strings.Join(why, "; "))
	}
	fmt.Fprintf(b, "%-12s%d file requests to Stash, %d of them 404s (each a line in Stash's log; the 404s at WARN)\n",
		"cost:", p.Cost.FileRequests, p.Cost.NotFound)
}
