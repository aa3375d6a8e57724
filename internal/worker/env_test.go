package worker

import (
	"slices"
	"testing"
)

func TestChildEnv(t *testing.T) {
	base := []string{"PATH=/bin", "LISTEN_FDS=2", "LISTEN_PID=1", "LISTEN_FDNAMES=web", "NOTIFY_SOCKET=@n",
		"WATCHDOG_USEC=1", "WATCHDOG_PID=1", "HOME=/root", "LISTEN_FDS_EXTRA=kept"}
	got := ChildEnv(base, []string{"APP_MODE=prod", "PATH=/venv/bin"})
	want := []string{"PATH=/bin", "HOME=/root", "LISTEN_FDS_EXTRA=kept", "APP_MODE=prod", "PATH=/venv/bin", "PYTHONUNBUFFERED=1"}
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv = %q, want %q", got, want)
	}
}

func TestScriptName(t *testing.T) {
	cases := []struct {
		env  []string
		want string
	}{
		{nil, ""},
		{[]string{"SCRIPT_NAME=/app/"}, "/app"},
		{[]string{"SCRIPT_NAME=/a", "SCRIPT_NAME=/b//"}, "/b"},
		{[]string{"SCRIPT_NAME=/"}, ""},
		{[]string{"XSCRIPT_NAME=/x"}, ""},
	}
	for _, c := range cases {
		if got := ScriptName(c.env); got != c.want {
			t.Errorf("ScriptName(%q) = %q, want %q", c.env, got, c.want)
		}
	}
}
