package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// FromStash is how Entries shows a generate toggle the file leaves unset.
const FromStash = "(from Stash)"

// Entry is one key and its effective value, safe to print.
type Entry struct {
	Key   string // dotted, as in the file
	Value string
}

// Entries lists every file key with its effective value, in the order of the
// example config, for `stashgen config show`. Secrets show as <redacted>, the
// database URL in redacted form and unset toggles as "(from Stash)".
func (c *Config) Entries() []Entry {
	out := make([]Entry, 0, len(keyDefs))
	for i := range keyDefs {
		d := &keyDefs[i]
		if d.kind == kindTable {
			continue
		}
		out = append(out, Entry{Key: d.name, Value: entryValue(d, c)})
	}
	return out
}

func entryValue(d *keyDef, c *Config) string {
	if d.name == "database.url" {
		return c.Database.Redacted()
	}
	switch p := d.field(c).(type) {
	case *int:
		return strconv.Itoa(*p)
	case *string:
		return *p
	case *Secret:
		return p.String()
	case *bool:
		return strconv.FormatBool(*p)
	case **bool:
		// config show asks nothing of Stash (it must work with Stash down),
		// so an unset toggle is named for where a run will take it from;
		// stash.ResolveToggles, which a run and its dry run use, needs
		// Stash's answer.
		if *p == nil {
			return FromStash
		}
		return strconv.FormatBool(**p)
	}
	panic(fmt.Sprintf("config: key %s has unhandled type %T", d.name, d.field(c)))
}

// Redact removes every secret of the configuration from s: the last line
// of defence for anything written to stdout.
func (c *Config) Redact(s string) string { return RedactSecrets(s, c.Secrets()) }

// RedactSecrets replaces each of secrets in s with Redacted, in the order
// given (Secrets lists them longest first). The log handler uses it with
// the list it was given once.
func RedactSecrets(s string, secrets []string) string {
	for _, secret := range secrets {
		s = strings.ReplaceAll(s, secret, Redacted)
	}
	return s
}

// Permissions returns a one-line warning when the config file at path is
// readable by group or others and holds a secret (an api_key, or a database
// URL with a password), and "" otherwise, including when the file cannot be
// read (Load reports that).
func Permissions(path string) (warning string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o044 == 0 {
		return ""
	}
	data, err := readFile(path)
	if err != nil {
		return ""
	}
	var f struct {
		Stash struct {
			APIKey string `toml:"api_key"`
		} `toml:"stash"`
		Database struct {
			URL string `toml:"url"`
		} `toml:"database"`
	}
	if _, err := toml.Decode(string(data), &f); err != nil {
		return ""
	}
	var held, alt []string
	if f.Stash.APIKey != "" {
		held = append(held, "stash.api_key")
		alt = append(alt, "move the key to api_key_file or STASHGEN_STASH_API_KEY")
	}
	if f.Database.URL != "" && hasSecret(f.Database.URL) {
		held = append(held, "a password in database.url")
		alt = append(alt, "move the URL to STASHGEN_DATABASE_URL or the password to ~/.pgpass")
	}
	if len(held) == 0 {
		return ""
	}
	return fmt.Sprintf("config %s is readable by other users (mode %04o) and holds %s; run chmod 600 %s, or %s",
		path, fi.Mode().Perm(), strings.Join(held, " and "), path, strings.Join(alt, " and "))
}
