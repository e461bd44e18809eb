package cycle

import (
	"context"
	"slices"
	"strings"

	"github.com/stashgen/stashgen/db"
)

// cursor is a sync_state row, "" when absent; the rows are read once a run.
func (p *pass) cursor(ctx context.Context, name string) (string, bool, error) {
	if p.cursors == nil {
		c, err := p.Store.Cursors(ctx)
		if err != nil {
			return "", false, err
		}
		p.cursors = c
	}
	v, ok := p.cursors[name]
	return v, ok, nil
}

// setCursor stores a sync_state row and remembers it.
func (p *pass) setCursor(ctx context.Context, name, value string) error {
	if err := p.Store.SetCursor(ctx, name, value); err != nil {
		return err
	}
	if p.cursors != nil {
		p.cursors[name] = value
	}
	return nil
}

// noteWanted compares the resource kinds the effective toggles want now
// with those the last run wanted (a sync_state row). A kind turned on
// sends to a check every generated scene whose last check did not cover
// it; a kind turned off sends to a check the pending scenes that lacked
// it, which may be complete now. Nothing is written when nothing changed.
func (p *pass) noteWanted(ctx context.Context) error {
	t, err := p.wanted(ctx)
	if err != nil {
		return err
	}
	want := t.Wanted().Strings()
	added, removed, known, err := p.wantedChange(ctx, want)
	if err != nil {
		return err
	}
	if known && len(added)+len(removed) == 0 {
		return nil
	}
	n, err := p.Store.Wanted(ctx, want, removed, !known)
	if err != nil {
		return err
	}
	if known {
		p.log.Info("the wanted resources changed; scenes verified without the new ones, or pending only for the dropped ones, are checked",
			"added", strings.Join(added, ","), "removed", strings.Join(removed, ","), KeySceneCount, n)
	}
	p.cursors[db.WantedCursor] = strings.Join(want, ",")
	return nil
}

// wantedChange compares want with the kinds the last run wanted (the
// sync_state row): the kinds added and removed since, and whether any run
// recorded them (known).
func (p *pass) wantedChange(ctx context.Context, want []string) (added, removed []string, known bool, err error) {
	prev, known, err := p.cursor(ctx, db.WantedCursor)
	if err != nil {
		return nil, nil, false, err
	}
	var was []string
	if prev != "" {
		was = strings.Split(prev, ",")
	}
	return minus(want, was), minus(was, want), known, nil
}

// minus is a without b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
