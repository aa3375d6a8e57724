package listen

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// Activation holds the sockets systemd passed to this process (socket
// activation: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). Open takes them by
// number (fd://N) or by name (systemd:NAME); the rest are there for All.
// A nil *Activation has no sockets. Not safe for concurrent use.
type Activation struct {
	socks []activated
}

type activated struct {
	fd    int
	name  string // FileDescriptorName=, by default the socket unit's name
	taken bool
}

// ActivationFromEnv reads the socket-activation variables through getenv
// for the process pid. It returns nil when there are none, or when they
// are meant for another process (LISTEN_PID is not pid): a process that
// inherited them by mistake must not take over those descriptors.
func ActivationFromEnv(getenv func(string) string, pid int) (*Activation, error) {
	fds, spid := getenv("LISTEN_FDS"), getenv("LISTEN_PID")
	if fds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(spid); err != nil || p != pid {
		return nil, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count of descriptors", fds)
	}
	var names []string
	if s := getenv("LISTEN_FDNAMES"); s != "" {
		names = strings.Split(s, ":")
	}
	a := &Activation{}
	for i := range n {
		// Without LISTEN_FDNAMES (an old systemd, or a hand-written
		// launcher) every socket is "unknown", as sd_listen_fds_with_names
		// names them.
		name := "unknown"
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		a.socks = append(a.socks, activated{fd: listenFDsStart + i, name: name})
	}
	return a, nil
}

// TakeActivation reads this process's socket-activation variables and
// unsets them, so that nothing corral starts (the workers) believes the
// sockets are its own. The passed descriptors are made close-on-exec.
func TakeActivation() (*Activation, error) {
	a, err := ActivationFromEnv(os.Getenv, os.Getpid())
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if a != nil {
		for _, s := range a.socks {
			syscall.CloseOnExec(s.fd)
		}
	}
	return a, err
}

// Len is the number of sockets passed.
func (a *Activation) Len() int {
	if a == nil {
		return 0
	}
	return len(a.socks)
}

// Names lists the names of the sockets passed, in descriptor order.
func (a *Activation) Names() []string {
	if a == nil {
		return nil
	}
	out := make([]string, len(a.socks))
	for i, s := range a.socks {
		out[i] = s.name
	}
	return out
}

// All makes a listener of every socket not taken yet.
func (a *Activation) All() ([]net.Listener, error) {
	if a == nil {
		return nil, nil
	}
	var out []net.Listener
	for i := range a.socks {
		s := &a.socks[i]
		if s.taken {
			continue
		}
		l, err := fileListener(a.file(s))
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// CloseRest closes the descriptors no listener was made of, and returns
// their names (fd://N when they have none) for a warning.
func (a *Activation) CloseRest() []string {
	if a == nil {
		return nil
	}
	var rest []string
	for i := range a.socks {
		s := &a.socks[i]
		if s.taken {
			continue
		}
		a.file(s).Close()
		name := s.name
		if name == "unknown" {
			name = "fd://" + strconv.Itoa(s.fd)
		}
		rest = append(rest, name)
	}
	return rest
}

// take returns descriptor fd as a file if systemd passed it and it is not
// taken yet; nil otherwise.
func (a *Activation) take(fd int) *os.File {
	if a == nil {
		return nil
	}
	for i := range a.socks {
		if s := &a.socks[i]; s.fd == fd && !s.taken {
			return a.file(s)
		}
	}
	return nil
}

// named makes a listener of every socket passed under name: one socket
// unit may hold several (ListenStream= lines), all with its name.
func (a *Activation) named(name string) ([]net.Listener, error) {
	if a.Len() == 0 {
		return nil, fmt.Errorf("no sockets were passed by systemd (LISTEN_FDS is not set for this process)")
	}
	var out []net.Listener
	for i := range a.socks {
		s := &a.socks[i]
		if s.name != name || s.taken {
			continue
		}
		l, err := fileListener(a.file(s))
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("systemd passed no socket named %q (names passed: %s)", name, strings.Join(a.Names(), ", "))
	}
	return out, nil
}

func (a *Activation) file(s *activated) *os.File {
	s.taken = true
	return os.NewFile(uintptr(s.fd), s.name)
}
