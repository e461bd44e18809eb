package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Environment variables Load reads.
const (
	EnvConfig      = "STASHGEN_CONFIG"
	envStashURL    = "STASHGEN_STASH_URL"
	envStashAPIKey = "STASHGEN_STASH_API_KEY"
	envDatabaseURL = "STASHGEN_DATABASE_URL"
)

// maxFileSize bounds what Load reads from the config and key files, so a
// mistaken path like /dev/zero fails instead of eating memory.
const maxFileSize = 1 << 20

// Options says where Load looks.
type Options struct {
	// Path is --config (or STASHGEN_CONFIG); "" searches SearchPaths. An
	// explicit path that does not exist is an error, unlike a missing file
	// on the search path.
	Path string
	// Getenv looks up an environment variable; nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// SearchPaths are tried in order and the first existing file is used;
	// nil means DefaultSearchPaths(Getenv), an empty slice no file at all.
	SearchPaths []string
	Flags       FlagOverrides
}

// FlagOverrides are the command-line flags that beat the file and the
// environment; an empty string means the flag was not given.
//
// There is deliberately no flag for the API key: a key on the command line
// is visible to every user through ps and /proc/PID/cmdline. Use
// api_key_file or STASHGEN_STASH_API_KEY.
type FlagOverrides struct {
	StashURL    string // --stash-url
	DatabaseURL string // --database-url (the password shows in ps; prefer the env)
	LogLevel    string // --log-level: debug, info, warn, error
}

// Source says where an effective value came from.
type Source string

// The sources, in increasing precedence.
const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// Sources maps each dotted key (stash.url, poll_interval, and log_level)
// to where its value came from. The file itself is Config.File.
type Sources map[string]Source

// DefaultSearchPaths is where Load looks without --config: the system file
// first, then the user's ($XDG_CONFIG_HOME, or ~/.config when that is unset
// or not absolute, as the XDG spec says).
func DefaultSearchPaths(getenv func(string) (string, bool)) []string {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	paths := []string{"/etc/stashgen/stashgen.toml"}
	if dir, ok := getenv("XDG_CONFIG_HOME"); ok && filepath.IsAbs(dir) {
		return append(paths, filepath.Join(dir, "stashgen", "stashgen.toml"))
	}
	if home, ok := getenv("HOME"); ok && home != "" {
		return append(paths, filepath.Join(home, ".config", "stashgen", "stashgen.toml"))
	}
	return paths
}

// Load builds the configuration: defaults, then the file, then the
// environment, then flags, then validation. Every error it returns is (or
// joins) *Error, with ExitCode 78.
func Load(opts Options) (*Config, *Sources, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	l := &loader{cfg: Default(), src: Sources{}, getenv: getenv}
	for _, d := range keyDefs {
		if d.kind != kindTable {
			l.src[d.name] = SourceDefault
		}
	}
	l.src[keyLogLevel] = SourceDefault

	path, err := findFile(opts, getenv)
	if err != nil {
		return nil, nil, err
	}
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, nil, &Error{File: path, Msg: "read file: " + err.Error(), Err: err,
				Hint: "make the file readable by the user stashgen runs as, or point --config elsewhere"}
		}
		l.path, l.data = path, string(data)
		if errs := l.decode(); len(errs) > 0 {
			return nil, nil, l.finish(errs)
		}
		if l.cfg.Stash.APIKey != "" && l.cfg.Stash.APIKeyFile != "" {
			// Checked before the environment is applied: the file is
			// ambiguous even when STASHGEN_STASH_API_KEY overrides both.
			return nil, nil, l.finish([]*Error{l.errorf("stash.api_key_file",
				"set only one of them: keep the key in api_key_file (or STASHGEN_STASH_API_KEY) and delete api_key",
				"cannot be combined with stash.api_key")})
		}
		l.cfg.File = path
	}

	errs := l.overlay(opts.Flags)
	errs = append(errs, l.resolveAPIKey()...)
	if len(errs) == 0 {
		errs = l.validate()
	}
	if len(errs) > 0 {
		return nil, nil, l.finish(errs)
	}
	return &l.cfg, &l.src, nil
}

// loader carries one Load's state.
type loader struct {
	cfg     Config
	src     Sources
	getenv  func(string) (string, bool)
	path    string // config file, "" when none
	data    string // its contents
	fileKey string // stash.api_key_file contents, once read
}

// findFile returns the config file to read, or "" when there is none.
func findFile(opts Options, getenv func(string) (string, bool)) (string, error) {
	path := opts.Path
	how := "--config"
	if path == "" {
		if p, ok := getenv(EnvConfig); ok && p != "" {
			path, how = p, EnvConfig
		}
	}
	if path != "" {
		fi, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", &Error{File: path, Msg: "file does not exist", Err: err,
				Hint: "fix the path given by " + how + ", or leave it unset to use " +
					strings.Join(searchPaths(opts, getenv), " or ")}
		case err != nil:
			return "", &Error{File: path, Msg: "stat file: " + pathErrText(err), Err: err}
		case fi.IsDir():
			return "", &Error{File: path, Msg: "is a directory, not a file",
				Hint: "point " + how + " at the stashgen.toml inside it"}
		}
		return path, nil
	}
	for _, p := range searchPaths(opts, getenv) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			// Skipping an unreadable system file would silently run with a
			// different configuration than the administrator wrote.
			return "", &Error{File: p, Msg: "stat file: " + pathErrText(err), Err: err,
				Hint: "make it readable by the user stashgen runs as, or pass --config"}
		}
		if fi.IsDir() {
			return "", &Error{File: p, Msg: "is a directory, not a file"}
		}
		return p, nil
	}
	return "", nil
}

func searchPaths(opts Options, getenv func(string) (string, bool)) []string {
	if opts.SearchPaths != nil {
		return opts.SearchPaths
	}
	return DefaultSearchPaths(getenv)
}

// readFile reads at most maxFileSize bytes, with errors that name no
// contents.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// unwrapPath drops the path an *fs.PathError repeats, keeping the errno
// for errors.Is.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// pathErrText drops the path an *fs.PathError repeats, since our messages
// already name the file.
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// decode reads the file strictly over the defaults.
func (l *loader) decode() []*Error {
	md, err := toml.Decode(l.data, &l.cfg)
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return []*Error{l.syntaxError(pe)}
	}
	errs := l.unknownKeys(md, err == nil)
	if err != nil {
		typeErrs := l.typeErrors(md)
		if len(typeErrs) == 0 {
			// Not expected: every type mismatch is one typeErrors knows. The
			// library's text names keys and types, never values.
			typeErrs = []*Error{{File: l.path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
		}
		errs = append(errs, typeErrs...)
	}
	if len(errs) > 0 {
		return errs
	}
	for _, d := range keyDefs {
		if d.kind != kindTable && md.IsDefined(strings.Split(d.name, ".")...) {
			l.src[d.name] = SourceFile
		}
	}
	return nil
}

// maxKeyErrors caps the unknown-key and type errors reported for one file.
const maxKeyErrors = 10

// quotedFragment matches the quoted text a TOML syntax message may carry.
var (
	quotedFragment = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)
	leadingNumber  = regexp.MustCompile(`^[-+]?[0-9][0-9_.eE+-]*( is out of)`)
)

// syntaxError turns a TOML parse error into an *Error. It uses the position
// but never ErrorWithPosition's source excerpt, and it hides the bits of the
// message quoted from the file: the offending line may be api_key = abc...
func (l *loader) syntaxError(pe toml.ParseError) *Error {
	msg := pe.Message
	if !strings.HasPrefix(msg, "Key '") && !strings.Contains(msg, "is not a table") {
		msg = quotedFragment.ReplaceAllStringFunc(msg, func(q string) string {
			if u, err := strconv.Unquote(q); err == nil && utf8.RuneCountInString(u) <= 1 {
				return q // one character, like 'x' or '\n'
			}
			return "(text not shown)"
		})
		msg = leadingNumber.ReplaceAllString(msg, "the number$1")
	}
	hint := "fix the TOML syntax there; see https://toml.io"
	if strings.Contains(msg, "expected value but found") {
		hint = `strings need double quotes, e.g. url = "http://localhost:9999"`
	}
	if strings.Contains(msg, "has already been defined") {
		hint = "set each key once"
	}
	return &Error{File: l.path, Line: pe.Position.Line, Column: pe.Position.Col,
		Msg: "syntax error: " + strings.TrimSuffix(msg, "."), Hint: hint}
}

// unknownKeys reports every key of the file that Config does not have. It
// checks the exact spelling itself, because the decoder also matches keys
// case-insensitively, and adds md.Undecoded() once decoding finished.
func (l *loader) unknownKeys(md toml.MetaData, decoded bool) []*Error {
	var errs []*Error
	more := 0
	seen := map[string]bool{}
	report := func(k toml.Key) {
		// Report the topmost unknown part only: for [stahs] url = ..., the
		// table. Below a known key that is not a table, the type error
		// says it all.
		for i := 1; i <= len(k); i++ {
			d := keyIndex[k[:i].String()]
			if d == nil {
				k = k[:i]
				break
			}
			if d.kind != kindTable {
				return
			}
		}
		name := k.String()
		if seen[name] || keyIndex[name] != nil {
			return
		}
		seen[name] = true
		if len(errs) == maxKeyErrors {
			more++ // each line costs a decode: stop before it gets quadratic
			return
		}
		e := &Error{File: l.path, Key: name, Line: l.line(md, k), Msg: "unknown key"}
		if s := suggest(name); s != "" {
			if d := keyIndex[s]; d != nil && d.kind == kindTable {
				s = "[" + s + "]"
			}
			e.Hint = "did you mean " + s + "?"
		} else if sec := section(name); sec == "" || keyIndex[sec] != nil {
			where := "at the top level"
			if sec != "" {
				where = "in [" + sec + "]"
			}
			e.Hint = "remove it; the keys " + where + " are " + strings.Join(sectionKeys(sec), ", ")
		}
		errs = append(errs, e)
	}
	for _, k := range md.Keys() {
		report(k)
	}
	if decoded {
		for _, k := range md.Undecoded() {
			report(k)
		}
	}
	if more > 0 {
		errs = append(errs, &Error{File: l.path, Msg: fmt.Sprintf("%d more unknown keys", more),
			Hint: "is this a stashgen config file?"})
	}
	return errs
}

// typeErrors finds the keys whose TOML type does not fit Config.
func (l *loader) typeErrors(md toml.MetaData) []*Error {
	var errs []*Error
	for _, k := range md.Keys() {
		d := keyIndex[k.String()]
		if d == nil {
			continue
		}
		got := md.Type(k...)
		if got == d.kind.tomlType() || len(errs) == maxKeyErrors {
			continue
		}
		e := &Error{File: l.path, Key: d.name, Line: l.line(md, k),
			Msg: fmt.Sprintf("must be %s (got %s)", d.kind.describe(), tomlTypeName(got))}
		switch {
		case d.kind == kindTable:
			e.Hint = "write it as a table: [" + d.name + "] on its own line, then its keys"
		case d.kind == kindInt && got == "String":
			e.Hint = "write the number without quotes: " + example(d)
		case d.kind == kindInt:
			e.Hint = "write a whole number: " + example(d)
		case (d.kind == kindBool || d.kind == kindToggle) && got == "String":
			e.Hint = "write true or false without quotes: " + example(d)
		default:
			e.Hint = "write it like this: " + example(d)
		}
		errs = append(errs, e)
	}
	return errs
}

// line finds the line of key in the file. MetaData keeps positions private,
// so it decodes the file again into a type whose only field sits at key and
// refuses to decode: the resulting ParseError carries the key's position.
// Only errors pay for this.
func (l *loader) line(md toml.MetaData, key toml.Key) int {
	if n := keyLine(l.data, key); n > 0 {
		return n
	}
	// A table created implicitly by a dotted key has no position of its
	// own; use its first key's.
	for _, k := range md.Keys() {
		if len(k) > len(key) && toml.Key(k[:len(key)]).String() == key.String() {
			return keyLine(l.data, k)
		}
	}
	return 0
}

type lineProbe struct{}

var errLineProbe = errors.New("stashgen line probe")

func (lineProbe) UnmarshalTOML(any) error { return errLineProbe }

func keyLine(data string, key toml.Key) int {
	if len(key) == 0 || len(key) > 8 {
		return 0
	}
	t := reflect.TypeOf(lineProbe{})
	for i := len(key) - 1; i >= 0; i-- {
		if strings.Contains(key[i], ",") || key[i] == "-" {
			return 0 // cannot be spelled as a struct tag
		}
		t = reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: t, Tag: reflect.StructTag(`toml:` + strconv.Quote(key[i])),
		}})
	}
	_, err := toml.Decode(data, reflect.New(t).Interface())
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.Message == errLineProbe.Error() {
		return pe.Position.Line
	}
	return 0
}

// overlay applies the environment, then the flags.
func (l *loader) overlay(flags FlagOverrides) []*Error {
	var errs []*Error
	for _, d := range keyDefs {
		if d.env == "" {
			continue
		}
		v, ok := l.getenv(d.env)
		if !ok || v == "" {
			continue // empty counts as unset, as in most shells' idiom
		}
		switch p := d.field(&l.cfg).(type) {
		case *string:
			*p = v
		case *Secret:
			*p = Secret(v)
		}
		l.src[d.name] = SourceEnv
	}
	if flags.StashURL != "" {
		l.cfg.Stash.URL = flags.StashURL
		l.src["stash.url"] = SourceFlag
	}
	if flags.DatabaseURL != "" {
		l.cfg.Database.URL = flags.DatabaseURL
		l.src["database.url"] = SourceFlag
	}
	if flags.LogLevel != "" {
		l.src[keyLogLevel] = SourceFlag
		switch lv := strings.ToLower(flags.LogLevel); lv {
		case "debug", "info", "warn", "error":
			l.cfg.LogLevel = lv
		case "warning":
			l.cfg.LogLevel = "warn"
		default:
			errs = append(errs, &Error{File: "command line (--log-level)", Key: keyLogLevel,
				Msg:  fmt.Sprintf("must be debug, info, warn or error (got %q)", flags.LogLevel),
				Hint: "pass --log-level=debug for more detail, or leave it out for info"})
		}
	}
	return errs
}

// resolveAPIKey settles the effective API key: the environment beats the
// file's api_key or api_key_file (Load has checked that not both are set).
func (l *loader) resolveAPIKey() []*Error {
	s := &l.cfg.Stash
	if l.src["stash.api_key"] == SourceEnv || s.APIKeyFile == "" {
		return nil
	}
	path := s.APIKeyFile
	if !filepath.IsAbs(path) && l.path != "" {
		path = filepath.Join(filepath.Dir(l.path), path)
	}
	data, err := readFile(path)
	if err != nil {
		e := l.errorf("stash.api_key_file",
			"make "+path+" readable by the user stashgen runs as, or set STASHGEN_STASH_API_KEY instead",
			"read key file %s: %v", path, err)
		e.Err = err
		return []*Error{e}
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		return []*Error{l.errorf("stash.api_key_file",
			"put the API key from Stash's Settings > Security in "+path+", or remove api_key_file to run without one",
			"key file %s is empty", path)}
	}
	if strings.IndexFunc(key, badKeyRune) >= 0 {
		return []*Error{l.errorf("stash.api_key_file",
			"the file must hold only the API key, on one line",
			"key file %s has whitespace or control characters inside the key (contents not shown)", path)}
	}
	l.fileKey = key
	s.APIKey = Secret(key)
	l.src["stash.api_key"] = SourceFile
	return nil
}

// badKeyRune is a rune that cannot be in an HTTP header value.
func badKeyRune(r rune) bool { return r <= ' ' || r == 0x7f }

// errorf builds an *Error for key, located where its value came from: the
// file and line, the environment variable or the flag.
// userinfoPassword is the password of a URL's userinfo, wherever a URL
// appears in a message (a mistyped lock_file can hold one).
var userinfoPassword = regexp.MustCompile(`(://[^:/@\s"']*:)[^@\s"']+(@)`)

// redactPairs blanks URL passwords and password=, apikey=, api_key= and
// token= values in a message, keeping the quote and parenthesis that close
// it.
func redactPairs(msg string) string {
	msg = userinfoPassword.ReplaceAllString(msg, "${1}"+Redacted+"${2}")
	return dsnPassword.ReplaceAllStringFunc(msg, func(m string) string {
		sub := dsnPassword.FindStringSubmatch(m)
		name, value := sub[1], sub[2]
		if strings.HasPrefix(value, Redacted) {
			return m
		}
		trimmed := strings.TrimRight(value, `")`)
		return name + Redacted + value[len(trimmed):]
	})
}

func (l *loader) errorf(key, hint, format string, args ...any) *Error {
	// A value quoted back may look like key=value with a secret in it
	// (lock_file = "apikey=..."): blank those, whatever the key.
	e := &Error{Key: key, Hint: hint, Msg: redactPairs(fmt.Sprintf(format, args...))}
	d := keyIndex[key]
	switch l.src[key] {
	case SourceFile:
		e.File = l.path
		e.Line = keyLine(l.data, strings.Split(key, "."))
	case SourceEnv:
		e.File = "environment (" + d.env + ")"
	case SourceFlag:
		e.File = "command line (" + d.flag + ")"
	default:
		e.File = "built-in default"
	}
	return e
}

// finish scrubs the secrets Load knows about out of the errors and joins
// them.
func (l *loader) finish(errs []*Error) error {
	secrets := []string{l.cfg.Stash.APIKey.Reveal(), l.fileKey}
	if key, ok := l.getenv(envStashAPIKey); ok {
		secrets = append(secrets, key)
	}
	for _, u := range []string{l.cfg.Database.URL, l.envValue(envDatabaseURL)} {
		secrets = append(secrets, dbPasswords(u)...) // the rule Config.Secrets uses
	}
	for _, e := range errs {
		scrub(e, secrets)
	}
	return join(errs)
}

func (l *loader) envValue(name string) string {
	v, _ := l.getenv(name)
	return v
}
