package account

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLookup(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this system")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	tests := []struct {
		user, group string
		uid, gid    int
		wantErr     string
	}{
		{"nobody", "", uid, gid, ""},
		{nobody.Uid, "", uid, gid, ""},
		{"nobody", "0", uid, 0, ""},
		{"root", "", 0, 0, ""},
		{"4242424", "4242424", 4242424, 4242424, ""},
		{"4242424", "", 0, 0, "give its group with --group"},
		{"no-such-user-here", "", 0, 0, `look up user "no-such-user-here"`},
		{"nobody", "no-such-group-here", 0, 0, `look up group "no-such-group-here"`},
	}
	for _, tt := range tests {
		a, err := Lookup(tt.user, tt.group)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Lookup(%q, %q) error = %v, want %q", tt.user, tt.group, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Lookup(%q, %q): %v", tt.user, tt.group, err)
			continue
		}
		if a.UID != tt.uid || a.GID != tt.gid || len(a.Groups) == 0 || a.Groups[0] != tt.gid {
			t.Errorf("Lookup(%q, %q) = uid %d gid %d groups %v, want uid %d gid %d first", tt.user, tt.group, a.UID, a.GID, a.Groups, tt.uid, tt.gid)
		}
	}
}

// TestDrop re-runs the test binary as a helper that drops root for nobody
// and reports its ids as the kernel sees them.
func TestDrop(t *testing.T) {
	if os.Getenv("ACCOUNT_DROP_HELPER") == "1" {
		a, err := Lookup("nobody", "")
		if err == nil {
			err = a.Drop()
		}
		if err != nil {
			os.Stdout.WriteString("error: " + err.Error())
			os.Exit(1)
		}
		b, _ := os.ReadFile("/proc/self/status")
		os.Stdout.Write(b)
		// Every thread's credentials, not only the caller's.
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "Uid:") {
					os.Stdout.WriteString("\nTask" + task.Name() + line[3:])
				}
			}
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; this test runs unprivileged")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody on this system")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDrop$")
	cmd.Env = append(os.Environ(), "ACCOUNT_DROP_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		fields[k] = strings.Join(strings.Fields(v), " ")
	}
	want := func(k, v string) {
		if fields[k] != v {
			t.Errorf("%s: %q, want %q", k, fields[k], v)
		}
	}
	u, g := nobody.Uid, nobody.Gid
	want("Uid", u+" "+u+" "+u+" "+u)
	want("Gid", g+" "+g+" "+g+" "+g)
	if strings.Contains(" "+fields["Groups"]+" ", " 0 ") {
		t.Errorf("Groups %q still holds root's group", fields["Groups"])
	}
	tasks := 0
	for k, v := range fields {
		if strings.HasPrefix(k, "Task") {
			tasks++
			if v != u+" "+u+" "+u+" "+u {
				t.Errorf("thread %s: Uid %q, want %s", k[4:], v, u)
			}
		}
	}
	if tasks < 2 {
		t.Errorf("saw %d threads, want the runtime's several", tasks)
	}
	if c := (&Account{UID: 7, GID: 8, Groups: []int{8, 9}}).Credential(); c.Uid != 7 || c.Gid != 8 || len(c.Groups) != 2 || c.NoSetGroups != (syscall.Geteuid() != 0) {
		t.Errorf("Credential = %+v", c)
	}
}

// TestForApp: the rules for --user, --group and --allow-root, for the
// account the test runs as.
func TestForApp(t *testing.T) {
	if _, err := ForApp("", "nogroup", false); err == nil || !strings.Contains(err.Error(), "--group needs --user") {
		t.Errorf("a group without a user: %v", err)
	}
	if _, err := ForApp("no-such-user-here", "", true); err == nil || !strings.HasPrefix(err.Error(), "--user: look up user") {
		t.Errorf("an unknown user: %v", err)
	}
	if os.Geteuid() == 0 {
		if _, err := ForApp("", "", false); err == nil || !strings.Contains(err.Error(), "would run the app as root") {
			t.Errorf("root without --allow-root: %v", err)
		}
		if _, err := ForApp("root", "", false); err == nil || !strings.Contains(err.Error(), "would run the app as root") {
			t.Errorf("--user root without --allow-root: %v", err)
		}
		if a, err := ForApp("", "", true); a != nil || err != nil {
			t.Errorf("root with --allow-root: %v, %v; want no switch", a, err)
		}
		if _, err := user.Lookup("nobody"); err == nil {
			if a, err := ForApp("nobody", "", false); err != nil || a == nil || a.UID == 0 {
				t.Errorf("root with --user nobody: %v, %v", a, err)
			}
		}
		return
	}
	if a, err := ForApp("", "", false); a != nil || err != nil {
		t.Errorf("no --user: %v, %v; want no switch", a, err)
	}
	if _, err := ForApp("root", "0", false); err == nil || !strings.Contains(err.Error(), "cannot switch to") {
		t.Errorf("--user root without root: %v", err)
	}
	self := strconv.Itoa(os.Geteuid())
	if a, err := ForApp(self, strconv.Itoa(os.Getegid()), false); err != nil || a.UID != os.Geteuid() {
		t.Errorf("--user as ourselves: %v, %v", a, err)
	}
}
