package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
