// Package sysmon keeps the Go runtime's system monitor out of its deep
// sleep in the master, which it does by re-executing the process once with
// GODEBUG=schedtrace set to its largest value.
//
// Why: the runtime's monitor thread (sysmon) sleeps deeply whenever every
// P is idle, and the next system call wakes it (a futex wake) and sets it
// polling every 20 µs again. The master idles between almost every pair of
// requests when the workers are the bottleneck (a Flask app), so it paid a
// deep sleep, a wake-up and dozens of short sleeps per request: 1.2 to 1.4
// context switches per request instead of 0.35, and a quarter of its CPU
// per request (measured in docs/performance.md). schedtrace is the only
// setting that keeps sysmon from deep sleep, the runtime reads it once at
// start-up, and it prints a scheduler line every schedtrace milliseconds:
// at its largest value, once in 24.8 days of the machine's uptime.
package sysmon

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Setting is what the master adds to GODEBUG.
const Setting = "schedtrace=2147483647"

// savedEnv carries the user's GODEBUG across the re-exec: "-" when it was
// unset, "=" followed by its value otherwise.
const savedEnv = "CORRAL_SAVED_GODEBUG"

// exe is the running binary: /proc/self/exe runs the very file this
// process was started from, even if it was replaced on disk since.
const exe = "/proc/self/exe"

// restored is set by Restore in a process Exec re-executed.
var restored bool

// Restore puts back the user's GODEBUG in a process that Exec
// re-executed, so that the workers and anything they start inherit the
// environment the user gave, and reports whether it did. Call it first
// thing in main, before anything reads the environment.
func Restore() bool {
	saved, ok := os.LookupEnv(savedEnv)
	if !ok {
		return false
	}
	_ = os.Unsetenv(savedEnv)
	if v, ok := strings.CutPrefix(saved, "="); ok {
		_ = os.Setenv("GODEBUG", v)
	} else {
		_ = os.Unsetenv("GODEBUG")
	}
	restored = true
	return true
}

// Exec re-executes the process with Setting added to GODEBUG and does not
// return, unless there is nothing to do (Restore found the process already
// re-executed, or the user's GODEBUG chooses a schedtrace of its own) or
// the exec failed; the process then goes on, without the setting if
// Exec returned an error.
func Exec() error {
	user, isSet := os.LookupEnv("GODEBUG")
	if restored || chooses(user) {
		return nil
	}
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	godebug, saved := Setting, "-"
	if isSet {
		saved = "=" + user
		if user != "" {
			godebug = user + "," + Setting
		}
	}
	env = append(env, "GODEBUG="+godebug, savedEnv+"="+saved)
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("re-execute %s with GODEBUG=%s: %w", exe, Setting, err)
	}
	return nil // not reached: Exec replaced the process
}

// chooses reports whether a GODEBUG value sets schedtrace itself, read as
// the runtime reads it (no spaces around the commas).
func chooses(godebug string) bool {
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(kv, "schedtrace=") {
			return true
		}
	}
	return false
}
