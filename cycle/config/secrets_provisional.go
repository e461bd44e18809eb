package config

import (
	"github.com/jackc/pgx/v5"

	"github.com/stashgen/stashgen/cycle/notify"
)

// Secrets lists the values no output may show. PROVISIONAL: replaced by
// the fence branch's implementation at merge.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) > 1 {
			out = append(out, s)
		}
	}
	add(c.Stash.APIKey.Reveal())
	if pc, err := pgx.ParseConfig(c.Database.URL); err == nil {
		add(pc.Password)
	}
	add(notify.Secret(c.Notify.PingURL))
	return out
}
