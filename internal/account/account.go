// Package account resolves the user and group corral runs the app as, and
// switches the process to them.
package account

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// Account is a user with the groups it runs with.
type Account struct {
	User   string // as given: a name or a numeric id
	UID    int
	GID    int   // primary group
	Groups []int // supplementary groups, GID first
}

// Lookup resolves a user and an optional group, each a name or a numeric
// id. Without a group the user's primary group is used, so a user must be
// known to the system (in /etc/passwd: corral is built without cgo, so NSS
// modules are not consulted) unless a group is given. The supplementary
// groups are the user's from /etc/group.
func Lookup(userName, groupName string) (*Account, error) {
	a := &Account{User: userName}
	u, err := lookupUser(userName)
	switch {
	case err == nil:
		a.UID, _ = strconv.Atoi(u.Uid)
		a.GID, _ = strconv.Atoi(u.Gid)
		for _, g := range groupIDs(u) {
			if n, err := strconv.Atoi(g); err == nil && !slices.Contains(a.Groups, n) {
				a.Groups = append(a.Groups, n)
			}
		}
	case isID(userName) && groupName != "":
		a.UID, _ = strconv.Atoi(userName)
	case isID(userName):
		return nil, fmt.Errorf("user id %s has no entry in /etc/passwd: give its group with --group", userName)
	default:
		return nil, fmt.Errorf("look up user %q: %w", userName, err)
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		switch {
		case err == nil:
			a.GID, _ = strconv.Atoi(g.Gid)
		case isID(groupName):
			a.GID, _ = strconv.Atoi(groupName)
		default:
			return nil, fmt.Errorf("look up group %q: %w", groupName, err)
		}
	}
	// The primary group comes first and the others keep their order.
	a.Groups = append([]int{a.GID}, slices.DeleteFunc(a.Groups, func(g int) bool { return g == a.GID })...)
	return a, nil
}

// ForApp resolves the account the app runs as, from --user, --group and
// --allow-root: nil when corral keeps the account it runs as. It refuses
// to let the app run as root without allowRoot, a group without a user,
// and a switch that a process without root cannot make.
func ForApp(userName, groupName string, allowRoot bool) (*Account, error) {
	if userName == "" && groupName != "" {
		return nil, errors.New("--group needs --user: corral switches accounts only when given a user")
	}
	var a *Account
	if userName != "" {
		var err error
		if a, err = Lookup(userName, groupName); err != nil {
			return nil, fmt.Errorf("--user: %w", err)
		}
	}
	euid := os.Geteuid()
	switch {
	case euid == 0 && (a == nil || a.UID == 0) && !allowRoot:
		return nil, errors.New("corral is running as root and would run the app as root: " +
			"pass --user (and --group) to run it as an unprivileged account, or --allow-root if you mean it")
	case euid != 0 && a != nil && (a.UID != euid || a.GID != os.Getegid()):
		return nil, fmt.Errorf("--user %s: corral runs as uid %d, gid %d and cannot switch to %s without root; "+
			"start it as root, or leave out --user and --group", userName, euid, os.Getegid(), a)
	}
	return a, nil
}

func isID(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && strconv.Itoa(n) == s
}

func lookupUser(s string) (*user.User, error) {
	if isID(s) {
		return user.LookupId(s)
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if isID(s) {
		return user.LookupGroupId(s)
	}
	return user.LookupGroup(s)
}

func groupIDs(u *user.User) []string {
	ids, err := u.GroupIds()
	if err != nil {
		return nil
	}
	return ids
}

func (a *Account) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", a.User, a.UID, a.GID)
}

// Credential is how the workers are started as the account. A process that
// is not root cannot set supplementary groups, so then the workers keep the
// ones it has, which Drop set.
func (a *Account) Credential() *syscall.Credential {
	c := &syscall.Credential{Uid: uint32(a.UID), Gid: uint32(a.GID)}
	for _, g := range a.Groups {
		c.Groups = append(c.Groups, uint32(g))
	}
	c.NoSetGroups = os.Geteuid() != 0
	return c
}

// FromCredential is the account a worker Credential runs as.
func FromCredential(c *syscall.Credential) *Account {
	a := &Account{User: strconv.Itoa(int(c.Uid)), UID: int(c.Uid), GID: int(c.Gid)}
	for _, g := range c.Groups {
		a.Groups = append(a.Groups, int(g))
	}
	if len(a.Groups) == 0 {
		a.Groups = []int{a.GID}
	}
	return a
}

// Drop switches the whole process (every thread: Go applies these calls
// to all of them on Linux) to the account: supplementary groups, then the
// group, then the user, real, effective and saved ids alike, so there is
// no way back. It checks that root cannot be regained.
func (a *Account) Drop() error {
	if err := syscall.Setgroups(a.Groups); err != nil {
		return fmt.Errorf("switch to %s: set groups: %w", a, err)
	}
	if err := syscall.Setresgid(a.GID, a.GID, a.GID); err != nil {
		return fmt.Errorf("switch to %s: set group: %w", a, err)
	}
	if err := syscall.Setresuid(a.UID, a.UID, a.UID); err != nil {
		return fmt.Errorf("switch to %s: set user: %w", a, err)
	}
	if a.UID != 0 {
		if err := syscall.Setuid(0); err == nil {
			return fmt.Errorf("switch to %s: root could be regained", a)
		} else if !errors.Is(err, syscall.EPERM) {
			return fmt.Errorf("switch to %s: check: %w", a, err)
		}
	}
	return nil
}
