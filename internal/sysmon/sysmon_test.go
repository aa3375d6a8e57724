package sysmon

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv makes the test binary act as the process under test (see
// TestMain) instead of running the tests.
const childEnv = "SYSMON_TEST_CHILD"

// report is what the child process prints after Exec returned.
type report struct {
	PidBefore, PidAfter int
	Applied             bool // Restore found the process re-executed
	Err                 string
	GODEBUG             string // os.Getenv after Exec
	GODEBUGSet          bool
	Saved               bool   // the carrier variable still set
	Initial             string // GODEBUG in /proc/self/environ: what the runtime read
	Inherited           string // GODEBUG as a child process sees it, "<unset>" if unset
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	restoredAtStart := Restore()
	r := report{PidBefore: os.Getpid()}
	err := Exec()
	r.PidAfter, r.Applied = os.Getpid(), restoredAtStart
	if err != nil {
		r.Err = err.Error()
	}
	r.GODEBUG, r.GODEBUGSet = os.LookupEnv("GODEBUG")
	_, r.Saved = os.LookupEnv(savedEnv)
	initial, _ := os.ReadFile("/proc/self/environ")
	for _, kv := range bytes.Split(initial, []byte{0}) {
		if v, ok := strings.CutPrefix(string(kv), "GODEBUG="); ok {
			r.Initial = v
		}
	}
	out, _ := exec.Command("sh", "-c", `echo "${GODEBUG-<unset>}"`).Output()
	r.Inherited = strings.TrimSpace(string(out))
	_ = json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// run starts the test binary as a child with GODEBUG set to godebug (unset
// if nil) and returns its report.
func run(t *testing.T, godebug *string) report {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") && !strings.HasPrefix(kv, savedEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1")
	if godebug != nil {
		cmd.Env = append(cmd.Env, "GODEBUG="+*godebug)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	return r
}

func ptr(s string) *string { return &s }

func TestExecAddsSettingAndRestoresEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		godebug *string
		initial string
	}{
		{"unset", nil, Setting},
		{"empty", ptr(""), Setting},
		{"user settings kept", ptr("madvdontneed=1,gctrace=0"), "madvdontneed=1,gctrace=0," + Setting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.godebug)
			if !r.Applied || r.Err != "" {
				t.Fatalf("applied=%v err=%q, want applied", r.Applied, r.Err)
			}
			if r.PidBefore != r.PidAfter {
				t.Errorf("pid changed across the re-exec: %d then %d", r.PidBefore, r.PidAfter)
			}
			if r.Initial != tc.initial {
				t.Errorf("the runtime started with GODEBUG=%q, want %q", r.Initial, tc.initial)
			}
			if r.Saved {
				t.Errorf("%s left in the environment", savedEnv)
			}
			want, wantSet, wantChild := "", false, "<unset>"
			if tc.godebug != nil {
				want, wantSet, wantChild = *tc.godebug, true, *tc.godebug
			}
			if r.GODEBUG != want || r.GODEBUGSet != wantSet {
				t.Errorf("GODEBUG after Exec = %q (set %v), want the user's %q (set %v)", r.GODEBUG, r.GODEBUGSet, want, wantSet)
			}
			if r.Inherited != wantChild {
				t.Errorf("a child process sees GODEBUG %q, want %q", r.Inherited, wantChild)
			}
		})
	}
}

func TestExecLeavesUsersSchedtrace(t *testing.T) {
	for _, v := range []string{"schedtrace=0", "gctrace=0,schedtrace=1000"} {
		r := run(t, ptr(v))
		if r.Applied || r.Err != "" {
			t.Errorf("GODEBUG=%q: applied=%v err=%q, want neither", v, r.Applied, r.Err)
		}
		if r.Initial != v || r.GODEBUG != v {
			t.Errorf("GODEBUG=%q: the runtime read %q and the process has %q, want it untouched", v, r.Initial, r.GODEBUG)
		}
	}
}
