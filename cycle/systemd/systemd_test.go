package systemd

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stashgen/stashgen/cycle/config"
	"github.com/stashgen/stashgen/cycle/notify"
)

var update = flag.Bool("update", false, "rewrite contrib/systemd from the default configuration")

const contrib = "../../contrib/systemd"

// The shipped units are exactly what `stashgen systemd` prints for the
// default configuration.
func TestShippedUnitsAreGenerated(t *testing.T) {
	t.Parallel()
	c := config.Default()
	o := Options{Config: &c}
	for name, want := range map[string]string{"stashgen.service": Service(o), "stashgen.timer": Timer(o)} {
		path := filepath.Join(contrib, name)
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s differs from `stashgen systemd` with the default configuration (go test ./cycle/systemd -update rewrites it)\n--- file:\n%s\n--- generated:\n%s", path, got, want)
		}
	}
}

func TestService_FollowsTheConfiguration(t *testing.T) {
	t.Parallel()
	c := config.Default()
	c.JobIntervalSeconds = 7200
	c.LockFile = "/run/stashgen/stashgen.lock"
	c.MetricsFile = "/var/lib/prometheus/node-exporter/stashgen.prom"
	c.Stash.APIKeyFile = CredentialDir + "/key"
	s := Service(Options{Config: &c, ConfigPath: "/srv/stashgen.toml", Binary: "/opt/stashgen"})
	for _, want := range []string{
		"ExecStart=/opt/stashgen once\n",
		"Environment=STASHGEN_CONFIG=/srv/stashgen.toml\n",
		"\nLoadCredential=key:/etc/stashgen/key\n",
		"\nRuntimeDirectory=stashgen\n",
		"\nRuntimeDirectoryPreserve=yes\n",
		"\nReadWritePaths=/var/lib/prometheus/node-exporter\n",
		"\nTimeoutStartSec=24h\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("service lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "/run/lock") {
		t.Errorf("service still opens /run/lock:\n%s", s)
	}
	if got := Timer(Options{Config: &c}); !strings.Contains(got, "\nOnUnitActiveSec=7200s\n") || !strings.Contains(got, "\nRandomizedDelaySec=5min\n") {
		t.Errorf("timer:\n%s", got)
	}
	c.JobIntervalSeconds = 600
	if got := Timer(Options{Config: &c}); !strings.Contains(got, "\nOnUnitActiveSec=600s\n") || !strings.Contains(got, "\nRandomizedDelaySec=1min\n") {
		t.Errorf("timer every 10 minutes:\n%s", got)
	}
}

func TestService_Defaults(t *testing.T) {
	t.Parallel()
	c := config.Default()
	s := Service(Options{Config: &c})
	for _, want := range []string{
		"\nType=oneshot\n", "\nSuccessExitStatus=75\n", "\nUser=stashgen\n", "\nReadWritePaths=/run/lock\n",
		"\nProtectSystem=strict\n", "\nProtectHome=yes\n", "\nPrivateTmp=yes\n", "\nNoNewPrivileges=yes\n",
		"\n#LoadCredential=stash_api_key:/etc/stashgen/stash_api_key\n", "\nTimeoutStartSec=12h\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("service lacks %q", want)
		}
	}
}

// The stop timeout covers everything a run does after SIGTERM.
func TestStopTimeout(t *testing.T) {
	t.Parallel()
	if StopTimeout < notify.Budget+auditBudget+stopJobBudget+signalMargin {
		t.Fatalf("stop timeout %v is shorter than what a stopping run does", StopTimeout)
	}
	if StopTimeout > 2*time.Minute {
		t.Fatalf("stop timeout %v: a stuck run would hold shutdown too long", StopTimeout)
	}
	if got := span(StopTimeout); got != "80s" {
		t.Fatalf("span(StopTimeout) = %q", got)
	}
}

// ProtectHome=yes hides /home, /root and /run/user: a free_space_path
// there would fail every run at start with "no such file or directory", so
// the unit shows them read-only instead (a run only measures the path),
// and changes nothing else.
func TestService_FreeSpacePathUnderHome(t *testing.T) {
	t.Parallel()
	base := config.Default()
	plain := Service(Options{Config: &base})
	tests := []struct {
		path     string
		readOnly bool
	}{
		{"", false},
		{"/srv/stash/generated", false},
		{"/home/stash/.stash/generated", true},
		{"/home", true},
		{"/root/.stash/generated", true},
		{"/run/user/1000/stash/generated", true},
		{"/home/../srv/stash/generated", false},
		{"/homer/stash/generated", false},
		{"/run/username/generated", false},
		{"/srv/../home/stash/generated", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Generate.FreeSpacePath = tt.path
			c.Generate.MinFreeSpace = "50GiB"
			s := Service(Options{Config: &c})
			if !tt.readOnly {
				if s != plain {
					t.Fatalf("service differs from the default one:\n%s", s)
				}
				return
			}
			if !strings.Contains(s, "\nProtectHome=read-only\n") || strings.Contains(s, "ProtectHome=yes\n") {
				t.Fatalf("service for %s lacks ProtectHome=read-only:\n%s", tt.path, s)
			}
			// Only the ProtectHome line and the comment above it change.
			i := strings.Index(s, "# free_space_path ")
			j := strings.Index(s, "ProtectHome=read-only\n")
			if i < 0 || j < i || !strings.Contains(s[i:j], "would hide") {
				t.Fatalf("no comment saying why before ProtectHome=read-only:\n%s", s)
			}
			if got := s[:i] + "ProtectHome=yes\n" + s[j+len("ProtectHome=read-only\n"):]; got != plain {
				t.Fatalf("more than ProtectHome changed:\n%s", s)
			}
		})
	}
}
