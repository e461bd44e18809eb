package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// Secrets the fuzz target plants outside the file: in the key file the
// seeds point api_key_file at, and in the environment.
const (
	fuzzFileKey = "FILEKEYSECRET4711"
	fuzzEnvKey  = "ENVKEYSECRET4711"
	fuzzEnvDBPW = "ENVDBSECRET4711"
)

// FuzzLoad decodes arbitrary bytes as the config file. Load must not panic,
// and no error it returns may carry a secret: neither the planted ones nor
// an api_key or database password written in the file itself.
func FuzzLoad(f *testing.F) {
	if data, err := os.ReadFile(exampleFile); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "key.txt"), []byte(fuzzFileKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "stashgen.toml")
		environ := fuzzEnv(len(data))
		load := func(data []byte) (*Config, *Sources, string, error) {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, src, err := Load(Options{Path: path, Getenv: env(environ)})
			return cfg, src, errorText(err), err
		}

		cfg, src, text, err := load(data)
		if err == nil {
			if cfg == nil || src == nil {
				t.Fatal("Load returned no error and no config")
			}
			for _, e := range cfg.Entries() {
				if e.Key == "stash.api_key" && e.Value != "" && e.Value != Redacted {
					t.Fatalf("Entries shows the api key: %q", e.Value)
				}
				if e.Key == "database.url" && e.Value != RedactURL(cfg.Database.URL) {
					t.Fatalf("Entries shows the database URL unredacted: %q", e.Value)
				}
			}
			_ = Permissions(path)
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %q is not a *config.Error", err)
		}
		if ce.ExitCode() != 78 {
			t.Fatalf("exit code %d", ce.ExitCode())
		}

		for _, s := range []string{fuzzFileKey, fuzzEnvKey, fuzzEnvDBPW} {
			if strings.Contains(text, s) {
				t.Fatalf("error reveals planted secret %q:\n%s", s, text)
			}
		}
		for _, s := range fileSecrets(data) {
			w := sharedPart(text, s)
			if w == "" {
				continue
			}
			// The text may contain it by coincidence (api_key =
			// "databaseurl"). Swap the secret for another word of the
			// same length: if the error still contains the part, it did
			// not come from the value.
			_, _, text2, _ := load(bytes.ReplaceAll(data, []byte(s), []byte(otherWord(s))))
			if strings.Contains(text2, w) {
				continue
			}
			t.Fatalf("error reveals %q of the file's secret %q:\n%s", w, s, text)
		}
	})
}

// fuzzEnv varies the environment with the input, so secrets from there are
// exercised too, including a database URL that fails to parse.
func fuzzEnv(n int) map[string]string {
	switch n % 4 {
	case 1:
		return map[string]string{envStashAPIKey: fuzzEnvKey}
	case 2:
		return map[string]string{envDatabaseURL: "postgres://u:" + fuzzEnvDBPW + "@db:bad/x"}
	case 3:
		return map[string]string{envDatabaseURL: "host=db password=" + fuzzEnvDBPW + " sslmode=sometimes"}
	}
	return nil
}

// errorText is everything the top level would print: every error and hint.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	var b strings.Builder
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			b.WriteString(e.Error() + "\n" + e.HintText() + "\n")
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		b.WriteString(err.Error() + "\n")
	}
	walk(err)
	return b.String()
}

var (
	alnumSecret   = regexp.MustCompile(`^[A-Za-z0-9]{8,}$`)
	rawAPIKey     = regexp.MustCompile(`api_key\s*=\s*["']*([^"'\s]+)`)
	rawURLPass    = regexp.MustCompile(`://[^:/@\s"']*:([^@\s"']+)@`)
	rawDSNPass    = regexp.MustCompile(`password\s*=\s*'?([^\s'"]+)`)
	rawQueryParam = regexp.MustCompile(`(?i)(?:password|apikey|api_key)=([^&\s"']+)`)
)

// fileSecrets finds the secrets written in data, decoded when it parses and
// from the raw text either way. Only long alphanumeric ones are checked, so
// they can neither be escaped differently nor be common words.
func fileSecrets(data []byte) []string {
	data = bytes.Clone(data) // never write into the fuzzer's input
	var found []string
	var m struct {
		Stash struct {
			APIKey any `toml:"api_key"`
		} `toml:"stash"`
		Database struct {
			URL any `toml:"url"`
		} `toml:"database"`
	}
	if _, err := toml.Decode(string(data), &m); err == nil {
		if s, ok := m.Stash.APIKey.(string); ok {
			found = append(found, s)
		}
		if s, ok := m.Database.URL.(string); ok {
			data = append(data, "\n"+s...)
		}
	}
	for _, re := range []*regexp.Regexp{rawAPIKey, rawURLPass, rawDSNPass, rawQueryParam} {
		for _, sub := range re.FindAllSubmatch(data, -1) {
			found = append(found, string(sub[1]))
		}
	}
	var out []string
	for _, s := range found {
		if alnumSecret.MatchString(s) {
			out = append(out, s)
		}
	}
	return out
}

// sharedPart returns the first 8-byte part of secret found in text, or "":
// a message showing only part of a secret still leaks it.
func sharedPart(text, secret string) string {
	for i := 0; i+8 <= len(secret); i++ {
		if w := secret[i : i+8]; strings.Contains(text, w) {
			return w
		}
	}
	return ""
}

// otherWord returns a word of s's length sharing no byte with s.
func otherWord(s string) string {
	for _, c := range "QZXJWVK" {
		if !strings.ContainsRune(s, c) {
			return strings.Repeat(string(c), len(s))
		}
	}
	return strings.Repeat("_", len(s))
}
