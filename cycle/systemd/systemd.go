// Package systemd writes stashgen's systemd units from the configuration:
// the service (one run, hardened) and the timer (one run every
// job_interval_seconds). `stashgen systemd` prints them; the files in
// contrib/systemd are what it prints for the default configuration, and a
// test keeps the two identical.
package systemd

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/notify"
)

// Defaults for Options' zero fields.
const (
	DefaultBinary = "/usr/local/bin/stashgen"
	DefaultConfig = "/etc/stashgen/stashgen.toml"
	// CredentialDir is where systemd puts the service's LoadCredential=
	// files.
	CredentialDir = "/run/credentials/stashgen.service"
)

// Stop budget: what a run does after SIGTERM before it exits, at worst.
// The stop timeout covers all of it plus a margin, so systemd's SIGKILL
// never cuts the audit row short.
const (
	stopJobBudget  = 5 * time.Second                                                            // stopJob and the ledger update
	auditBudget    = 4*10*time.Second + (1+2+4)*time.Second                                     // 4 tries of 10 s, waits between
	metricsBudget  = 5 * time.Second                                                            // the metrics file's reads
	signalMargin   = 5 * time.Second                                                            // slack, and the window for a second signal
	StopTimeout    = stopJobBudget + auditBudget + metricsBudget + notify.Budget + signalMargin // 80 s
	minStartWindow = 12 * time.Hour
)

// Options are what the units are made from.
type Options struct {
	Config *config.Config
	// ConfigPath is the file the service reads (STASHGEN_CONFIG); ""
	// means DefaultConfig. A relative path is made absolute: systemd
	// starts the service elsewhere.
	ConfigPath string
	// Binary is stashgen's path in ExecStart; "" means DefaultBinary.
	Binary string
}

// Service is stashgen.service.
func Service(o Options) string {
	c := o.Config
	var b strings.Builder
	w := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
	}
	w("# stashgen.service: one stashgen run, started by stashgen.timer.",
		"# Written by `stashgen systemd` from the configuration: run it again after",
		"# changing job_interval_seconds, lock_file, metrics_file, api_key_file or",
		"# free_space_path.",
		"# Install: see README.md, \"Run it every hour\".",
		"[Unit]",
		"Description=stashgen: ask Stash to generate missing previews, sprites, covers and phashes",
		"Documentation=https://github.com/stashgen/stashgen#readme",
		"Wants=network-online.target",
		"After=network-online.target postgresql.service",
		"",
		"[Service]",
		"Type=oneshot",
		"ExecStart="+or(o.Binary, DefaultBinary)+" once",
		"# 75 means \"stood aside, try later\" (another run, a busy Stash, a scan that",
		"# goes first): not a failure.",
		"SuccessExitStatus=75",
		"Environment=STASHGEN_CONFIG="+or(absolute(o.ConfigPath), DefaultConfig),
		"")
	if name, ok := credential(c.Stash.APIKeyFile); ok {
		w("# The API key stays out of the config file: systemd hands this root-only",
			"# file to the service as "+CredentialDir+"/"+name+",",
			"# the file stash.api_key_file names.",
			"LoadCredential="+name+":/etc/stashgen/"+name)
	} else {
		w("# Keep the API key out of the config file: systemd hands this root-only",
			"# file to the service as "+CredentialDir+"/stash_api_key. Set",
			"#   api_key_file = \""+CredentialDir+"/stash_api_key\"",
			"# in the [stash] table and run `stashgen systemd` again, or uncomment:",
			"#LoadCredential=stash_api_key:/etc/stashgen/stash_api_key")
	}
	w("",
		"# A run follows one Stash job at a time, and a big generation takes hours;",
		"# timer ticks meanwhile find the lock held and stand aside. 12 job",
		"# intervals (at least 12 h) before systemd stops a run that never ends.",
		"TimeoutStartSec="+span(max(minStartWindow, 12*c.JobInterval())),
		"# On stop, stashgen sends stopJob, then writes its audit row (retried for",
		"# up to 47 s), the metrics file and the last ping (up to 18 s); this leaves",
		"# room for all of it. A second signal makes it exit at once.",
		"TimeoutStopSec="+span(StopTimeout),
		"KillSignal=SIGTERM",
		"",
		"# A dedicated system user (useradd --system --no-create-home stashgen), and",
		"# the only places it writes: the lock file's directory (the file is never",
		"# deleted) and the metrics file's.",
		"User=stashgen",
		"Group=stashgen")
	for _, l := range writable(c) {
		w(l)
	}
	w("NoNewPrivileges=yes",
		"ProtectSystem=strict")
	w(protectHome(c)...)
	w("PrivateTmp=yes",
		"PrivateDevices=yes",
		"ProtectKernelTunables=yes",
		"ProtectKernelModules=yes",
		"ProtectKernelLogs=yes",
		"ProtectControlGroups=yes",
		"ProtectClock=yes",
		"ProtectHostname=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"RestrictNamespaces=yes",
		"RestrictRealtime=yes",
		"RestrictSUIDSGID=yes",
		"LockPersonality=yes",
		"MemoryDenyWriteExecute=yes",
		"SystemCallArchitectures=native",
		"SystemCallFilter=@system-service",
		"SystemCallErrorNumber=EPERM",
		"CapabilityBoundingSet=",
		"UMask=0077")
	return b.String()
}

// Timer is stashgen.timer.
func Timer(o Options) string {
	c := o.Config
	every := c.JobInterval()
	return fmt.Sprintf(`# stashgen.timer: starts stashgen.service every job_interval_seconds.
# Written by `+"`stashgen systemd`"+` from the configuration: run it again after
# changing job_interval_seconds.
[Unit]
Description=Run stashgen every %s

[Timer]
# The first run shortly after boot, then one job interval after the last
# run started. (Persistent= would do nothing: it only applies to OnCalendar=.)
OnBootSec=5min
OnUnitActiveSec=%ds
# Spread the load when many timers fire at once.
RandomizedDelaySec=%s

[Install]
WantedBy=timers.target
`, span(every), c.JobIntervalSeconds, span(min(5*time.Minute, every/10).Round(time.Second)))
}

// credential reports the credential name when the API key file is one of
// the service's credentials.
func credential(keyFile string) (string, bool) {
	dir, name := filepath.Split(keyFile)
	if filepath.Clean(dir) != CredentialDir || name == "" {
		return "", false
	}
	return name, true
}

// writable lists the lines that let the service write the lock file's
// directory and the metrics file's: a RuntimeDirectory= when the lock
// lives in /run/<name>/, else ReadWritePaths=.
func writable(c *config.Config) []string {
	var out []string
	lockDir := filepath.Dir(c.LockFile)
	paths := []string{}
	if parent, name := filepath.Split(lockDir); filepath.Clean(parent) == "/run" && name != "lock" && name != "" {
		out = append(out, "RuntimeDirectory="+name,
			"# Keep the lock file between runs: deleting it races with a waiting run.",
			"RuntimeDirectoryPreserve=yes")
	} else {
		paths = append(paths, lockDir)
	}
	if c.MetricsFile != "" {
		if d := filepath.Dir(c.MetricsFile); d != lockDir {
			paths = append(paths, d)
		}
	}
	if len(paths) > 0 {
		out = append(out, "ReadWritePaths="+strings.Join(paths, " "))
	}
	return out
}

// homeDirs are what ProtectHome=yes hides from the service.
var homeDirs = []string{"/home", "/root", "/run/user"}

// protectHome is the ProtectHome= line, yes, unless free_space_path lies
// under a directory that hides. The run measures the free space there at
// start, and a hidden path fails with "no such file or directory" before
// any work; it only measures, so read-only is enough.
func protectHome(c *config.Config) []string {
	path := c.Generate.FreeSpacePath
	if path == "" {
		return []string{"ProtectHome=yes"}
	}
	path = filepath.Clean(path)
	for _, dir := range homeDirs {
		if path == dir || strings.HasPrefix(path, dir+"/") {
			return []string{
				"# free_space_path " + path + " is under " + dir + ", which ProtectHome=yes would hide;",
				"# the service only measures the free space there, so read-only is enough.",
				"ProtectHome=read-only",
			}
		}
	}
	return []string{"ProtectHome=yes"}
}

// span prints a duration as systemd reads it: 12h, 5min, 90s.
func span(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s > 0 && s%3600 == 0:
		return fmt.Sprintf("%dh", s/3600)
	case s > 0 && s%60 == 0:
		return fmt.Sprintf("%dmin", s/60)
	}
	return fmt.Sprintf("%ds", s)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// absolute is path made absolute, when it can be.
func absolute(path string) string {
	if abs, err := filepath.Abs(path); err == nil && path != "" {
		return abs
	}
	return path
}

// Write prints the units: unit is "service", "timer", or "both" (each
// under a header naming where it goes).
func Write(w io.Writer, o Options, unit string) error {
	var err error
	switch unit {
	case "service":
		_, err = io.WriteString(w, Service(o))
	case "timer":
		_, err = io.WriteString(w, Timer(o))
	default:
		_, err = fmt.Fprintf(w, "### /etc/systemd/system/stashgen.service\n%s\n### /etc/systemd/system/stashgen.timer\n%s",
			Service(o), Timer(o))
	}
	return err
}
