package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testSecret = "sk-very-secret-0123"

func TestSecret_NeverPrinted(t *testing.T) {
	t.Parallel()
	s := Secret(testSecret)
	holder := struct {
		Name string
		Key  Secret
	}{"stash", s}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-5v", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, holder), fmt.Sprintf(verb, &holder))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(s, holder), s.String(), s.GoString(),
		fmt.Errorf("send key %v: %w", s, errors.New("boom")).Error())

	j, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	text, _ := s.MarshalText()
	outputs = append(outputs, string(text))

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("msg", slog.String("k", s.String()), slog.Any("any", s), slog.Any("holder", holder),
			"loose", s, slog.Group("g", slog.Any("k", s)))
		outputs = append(outputs, buf.String())
	}

	for _, out := range outputs {
		if strings.Contains(out, testSecret) || strings.Contains(out, fmt.Sprintf("%x", testSecret)) {
			t.Errorf("secret printed: %s", out)
		}
	}
	if got := fmt.Sprintf("%v|%s|%q|%#v", s, s, s, s); got != `<redacted>|<redacted>|"<redacted>"|"<redacted>"` {
		t.Errorf("got %s", got)
	}
	var back map[string]string
	if err := json.Unmarshal(j, &back); err != nil || back["Key"] != "<redacted>" {
		t.Errorf("json %s (%v)", j, err)
	}
	if s.Reveal() != testSecret {
		t.Error("Reveal lost the value")
	}
}

func TestSecret_EmptyShowsEmpty(t *testing.T) {
	t.Parallel()
	var s Secret
	if got := fmt.Sprintf("[%v][%s]", s, s); got != "[][]" {
		t.Errorf("got %s", got)
	}
	if j, _ := json.Marshal(s); string(j) != `""` {
		t.Errorf("json %s", j)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://user:secret@host/db", "postgres://user:<redacted>@host/db"},
		{"postgres://user:secret@host:5432/db?sslmode=disable", "postgres://user:<redacted>@host:5432/db?sslmode=disable"},
		{"postgresql://user@host/db", "postgresql://user@host/db"},
		{"postgres://host/db", "postgres://host/db"},
		{"postgres://user:@host/db", "postgres://user:<redacted>@host/db"},
		{"postgres://user:p@ss@host/db", "postgres://user:<redacted>@host/db"},
		{"postgres://user:p/ss@host/db", "postgres://user:<redacted>@host/db"},
		{"postgres://user:p?ss#x@host/db", "postgres://user:<redacted>@host/db"},
		{"postgres://u:secret@host/db?email=a@b", "postgres://u:<redacted>@host/db?email=a@b"},
		{"postgres://host/db?password=secret&sslmode=require", "postgres://host/db?password=<redacted>&sslmode=require"},
		{"postgres://host/db?sslmode=require&sslpassword=secret", "postgres://host/db?sslmode=require&sslpassword=<redacted>"},
		{"postgres://host/db?PassWord=secret", "postgres://host/db?PassWord=<redacted>"},
		{"postgres://host/db?pass%77ord=secret", "postgres://host/db?pass%77ord=<redacted>"},
		{"http://stash:9999/graphql?apikey=secret", "http://stash:9999/graphql?apikey=<redacted>"},
		{"http://stash/?api_key=secret&x=1#frag", "http://stash/?api_key=<redacted>&x=1#frag"},
		{"http://stash/?token=secret", "http://stash/?token=<redacted>"},
		{"https://hc-ping.com/uuid", "https://hc-ping.com/uuid"},
		{"host=db user=u password=secret dbname=x", "host=db user=u password=<redacted> dbname=x"},
		{"host=db password='se cret' dbname=x", "host=db password=<redacted> dbname=x"},
		{"host=db password = 'it\\'s secret' dbname=x", "host=db password = <redacted> dbname=x"},
		{"host=db password='unterminated secret", "host=db password=<redacted>"},
		{"host=db PASSWORD=secret", "host=db PASSWORD=<redacted>"},
		{"host=db sslpassword=secret", "host=db sslpassword=<redacted>"},
		{"host=db user=u", "host=db user=u"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		if strings.Contains(RedactURL(tt.in), "secret") {
			t.Errorf("RedactURL(%q) still shows the secret", tt.in)
		}
	}
}

func TestDatabase_PrintsRedacted(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Database.URL = "postgres://stashgen:hunter22@db/stashgen"
	cfg.Stash.APIKey = Secret(testSecret)

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs = append(outputs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, cfg.Database))
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("cfg", slog.Any("db", cfg.Database), slog.Any("cfg", cfg),
			slog.String("url", cfg.Database.Redacted()))
		outputs = append(outputs, buf.String())
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter22") || strings.Contains(out, testSecret) {
			t.Errorf("secret printed: %s", out)
		}
		if !strings.Contains(out, "<redacted>") && !strings.Contains(out, `\u003credacted\u003e`) {
			t.Errorf("no redaction marker in %s", out)
		}
	}
	if got := cfg.Database.Redacted(); got != "postgres://stashgen:<redacted>@db/stashgen" {
		t.Errorf("Redacted() = %q", got)
	}
}

func TestError_EscapesControlCharacters(t *testing.T) {
	t.Parallel()
	_, _, _, err := loadString(t, "\"\\u001b[31mred\" = 1\n", nil, FlagOverrides{})
	e := firstError(t, err)
	if strings.ContainsRune(e.Error(), 0x1b) {
		t.Errorf("error %q carries an escape character", e.Error())
	}
}

func TestConfig_Secrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		apiKey  string
		dbURL   string
		pingURL string
		want    []string // in order
	}{
		{"none", "", "postgres://stashgen@localhost:5432/stashgen", "", nil},
		{"api key", testSecret, "postgres://stashgen@db/stashgen", "", []string{testSecret}},
		{"userinfo", "", "postgres://stashgen:hunter22@db:5432/stashgen", "", []string{"hunter22"}},
		{"postgresql scheme", "", "postgresql://stashgen:hunter22@db/stashgen", "", []string{"hunter22"}},
		{"query parameter", "", "postgres://u@h/db?password=secret", "", []string{"secret"}},
		{"query parameter among others", "", "postgres://u@h/db?sslmode=disable&password=secret&application_name=x", "", []string{"secret"}},
		{"percent-encoded, both forms", "", "postgres://u:p%40ss%20word@db/x", "", []string{"p%40ss%20word", "p@ss word"}},
		{"keyword DSN, quotes and spaces", "", "host=db user=stashgen password='a b-secret' dbname=stashgen", "", []string{"a b-secret"}},
		{"keyword DSN, escaped quote", "", `host=db password='it\'s secret'`, "", []string{`it\'s secret`, "it's secret"}},
		{"keyword DSN, unquoted", "", "host=db password=hunter22 sslmode=disable", "", []string{"hunter22"}},
		{"keyword DSN, spaces around =", "", "host=db password = 'hunter 22'", "", []string{"hunter 22"}},
		{"keyword DSN, password inside another value", "", "host=db options='-c password=decoy'", "", nil},
		{"one-character password", "k", "postgres://u:x@db/x", "", nil},
		{"one multibyte character", "", "host=db password=é", "", nil},
		{"two characters", "", "postgres://u:xy@db/x", "", []string{"xy"}},
		{"empty password", "", "postgres://u:@db/x?password=", "", nil},
		{"unparseable URL: the written password", "", "postgres://u:hunter22@db:port/x", "", []string{"hunter22"}},
		{"unparseable DSN: the written password", "", "host=db password='a b-secret", "", []string{"a b-secret"}},
		{"unparseable, no password", "", "::::not a url", "", nil},
		{"ping URL", "", "postgres://db/x", "https://hc-ping.com/0f6b1e4c-uuid", []string{"/0f6b1e4c-uuid"}},
		{"all three, longest first, no duplicates", "abcdef", "postgres://u:abcdef@db/x?password=abcdefgh", "https://hc-ping.com/0f6b1e4c-uuid",
			[]string{"/0f6b1e4c-uuid", "abcdefgh", "abcdef"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Stash.APIKey = Secret(tt.apiKey)
			c.Database.URL = tt.dbURL
			c.Notify.PingURL = tt.pingURL
			got := c.Secrets()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Secrets() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConfig_SecretsRedactALogLine is the bug the hand-written parser in
// main had: for password='a b-secret' it found "a", and every a in every
// log line became <redacted>.
func TestConfig_SecretsRedactALogLine(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Database.URL = "host=db user=stashgen password='a b-secret' dbname=stashgen"
	line := `level=ERROR msg="connect to database" stash=http://localhost:9999 database.url="host=db user=stashgen password='a b-secret' dbname=stashgen" err="a b-secret rejected"`
	for _, s := range c.Secrets() {
		line = strings.ReplaceAll(line, s, Redacted)
	}
	want := `level=ERROR msg="connect to database" stash=http://localhost:9999 database.url="host=db user=stashgen password='<redacted>' dbname=stashgen" err="<redacted> rejected"`
	if line != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

// TestConfig_SecretsIgnoreTheEnvironment pins a choice: only the password
// the connection string carries is listed, not the one pgx would take from
// PGPASSWORD or a passfile. Not parallel: it sets the environment.
func TestConfig_SecretsIgnoreTheEnvironment(t *testing.T) {
	passfile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(passfile, []byte("*:*:*:*:passfilesecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", passfile)
	for _, env := range []string{"", "envsecret"} {
		t.Setenv("PGPASSWORD", env)
		c := Default()
		c.Database.URL = "postgres://stashgen@db/stashgen"
		if got := c.Secrets(); len(got) != 0 {
			t.Errorf("PGPASSWORD=%q: Secrets() = %q, want none", env, got)
		}
		c.Database.URL = "postgres://stashgen:hunter22@db/stashgen"
		if got := c.Secrets(); strings.Join(got, "|") != "hunter22" {
			t.Errorf("PGPASSWORD=%q: Secrets() = %q, want the URL's own", env, got)
		}
	}
}
