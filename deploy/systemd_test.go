package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitFile is the systemd unit the tests check.
const unitFile = "systemd/imagebadger.service"

// installedBinary is where the unit expects the binary.
const installedBinary = "/usr/local/bin/imagebadger"

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to check the unit (Debian package systemd; make deps)")
	}
	return p
}

// serviceSettings returns the [Service] section's settings in order, as
// NAME=VALUE pairs, comments and blank lines left out.
func serviceSettings(t *testing.T, unit []byte) [][2]string {
	t.Helper()
	var out [][2]string
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not NAME=VALUE", unitFile, line)
			}
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// TestSystemdVerify has systemd's own verifier read the unit. The unit runs
// /usr/local/bin/imagebadger, which the verifier requires to exist; the test
// machine has none, so a copy of the unit whose ExecStart names the binary
// built from this repository is verified instead, everything else as
// written. systemd-analyze verify exits 0 on an unknown setting or a value it
// cannot parse, saying so on standard error: any output fails the test.
func TestSystemdVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	execStart := ""
	for _, kv := range serviceSettings(t, unit) {
		if kv[0] == "ExecStart" {
			execStart = kv[1]
		}
	}
	if !strings.HasPrefix(execStart, installedBinary+" ") {
		t.Fatalf("ExecStart=%s does not run %s", execStart, installedBinary)
	}
	bin := binary(t)
	copied := bytes.Replace(unit, []byte("ExecStart="+installedBinary+" "), []byte("ExecStart="+bin+" "), 1)
	dir := t.TempDir()
	path := filepath.Join(dir, filepath.Base(unitFile))
	if err := os.WriteFile(path, copied, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", path)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}

// TestSystemdSecurity has systemd assess the unit's sandboxing offline and
// checks the protections a network service reading registries needs none of
// the privileges of: its own user, a read-only system, no capabilities,
// Internet and local sockets only, a system call filter, no writable and
// executable memory. It also holds the overall exposure systemd computes to
// 2.0 or less (on its scale where 10 is an unprotected service).
func TestSystemdSecurity(t *testing.T) {
	analyze := systemdAnalyze(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "security", "--offline=yes", "--json=short", unitFile).Output()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v", err)
	}
	var checks []struct {
		Set       bool   `json:"set"`
		Name      string `json:"name"`
		JSONField string `json:"json_field"`
	}
	if err := json.Unmarshal(out, &checks); err != nil {
		t.Fatalf("systemd-analyze security --json: %v\n%s", err, out)
	}
	set := map[string]bool{}
	for _, c := range checks {
		// systemd 252 names one field CapabilityBoundingSet_CAP_NET_BIND_SERVICE_BROADCAST_RAW)
		set[strings.TrimRight(c.JSONField, ")")] = c.Set
	}
	for _, want := range []string{
		"UserOrDynamicUser", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
		"PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
		"ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc", "RestrictSUIDSGID",
		"RestrictNamespaces_user", "RestrictNamespaces_net", "RestrictRealtime", "LockPersonality",
		"MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter_privileged",
		"SystemCallFilter_mount", "SystemCallFilter_module", "SystemCallFilter_raw_io",
		"SystemCallFilter_debug", "SystemCallFilter_reboot", "SystemCallFilter_obsolete",
		"CapabilityBoundingSet_CAP_SYS_ADMIN", "CapabilityBoundingSet_CAP_NET_ADMIN",
		"CapabilityBoundingSet_CAP_DAC_FOWNER_IPC_OWNER", "CapabilityBoundingSet_CAP_SET_UID_GID_PCAP",
		"CapabilityBoundingSet_CAP_NET_BIND_SERVICE_BROADCAST_RAW", "AmbientCapabilities",
		"RestrictAddressFamilies_AF_PACKET", "RestrictAddressFamilies_AF_NETLINK",
		"RestrictAddressFamilies_OTHER",
	} {
		got, ok := set[want]
		if !ok {
			t.Errorf("systemd-analyze security does not assess %s (it assesses %d settings)", want, len(set))
		} else if !got {
			t.Errorf("systemd finds %s not protected", want)
		}
	}

	// --threshold counts in tenths of the printed exposure level.
	cmd := exec.CommandContext(ctx, analyze, "security", "--offline=yes", "--threshold=20", unitFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("systemd rates the unit's exposure above 2.0: %v\n%s", err, out)
	}
}

// TestSystemdSettings checks what systemd leaves to the service: the
// database is in the state directory systemd creates for it, and the command
// line with the unit's environment is one the binary accepts.
func TestSystemdSettings(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var args []string
	stateDirs := []string{}
	for _, kv := range serviceSettings(t, unit) {
		switch kv[0] {
		case "Environment":
			for _, assignment := range strings.Fields(kv[1]) {
				k, v, _ := strings.Cut(strings.Trim(assignment, `"`), "=")
				env[k] = v
			}
		case "ExecStart":
			args = strings.Fields(kv[1])[1:]
		case "StateDirectory":
			stateDirs = append(stateDirs, strings.Fields(kv[1])...)
		}
	}
	db := env["IMAGEBADGER_DB"]
	inState := false
	for _, d := range stateDirs {
		inState = inState || strings.HasPrefix(db, "/var/lib/"+d+"/")
	}
	if !inState {
		t.Errorf("IMAGEBADGER_DB=%q is not inside a StateDirectory= (%v), the one place a DynamicUser= service may write", db, stateDirs)
	}
	checkCommandLine(t, unitFile, args, env)
}
