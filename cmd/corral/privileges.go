package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"corral/internal/account"
	"corral/internal/admin"
	"corral/internal/config"
)

// runAs resolves --user and --group: the account the workers run as, nil
// for the one corral runs as. It refuses to let the app run as root
// without --allow-root, and a switch an unprivileged corral cannot make.
func runAs(cfg *config.Config) (*account.Account, error) {
	if cfg.User == "" && cfg.Group != "" {
		return nil, errors.New("--group needs --user: corral switches accounts only when given a user")
	}
	var acct *account.Account
	if cfg.User != "" {
		var err error
		if acct, err = account.Lookup(cfg.User, cfg.Group); err != nil {
			return nil, fmt.Errorf("--user: %w", err)
		}
	}
	euid := os.Geteuid()
	switch {
	case euid == 0 && (acct == nil || acct.UID == 0) && !cfg.AllowRoot:
		return nil, errors.New("corral is running as root and would run the app as root: " +
			"pass --user (and --group) to run it as an unprivileged account, or --allow-root if you mean it")
	case euid != 0 && acct != nil && (acct.UID != euid || acct.GID != os.Getegid()):
		return nil, fmt.Errorf("--user %s: corral runs as uid %d, gid %d and cannot switch to %s without root; "+
			"start it as root, or leave out --user and --group", cfg.User, euid, os.Getegid(), acct)
	}
	return acct, nil
}

// dropPrivileges switches the master from root to the account the workers
// run as. Everything that needs root (privileged ports, socket files in
// root's directories, the admin socket) is open by now. The admin server
// (nil = none) gives its socket to the account (admin.Server.Chown).
//
// It returns the credential to start the workers with: after the switch,
// they inherit the supplementary groups, which only root may set.
func dropPrivileges(cred *syscall.Credential, adminSrv *admin.Server, log *slog.Logger) (*syscall.Credential, error) {
	if cred == nil || os.Geteuid() != 0 {
		return cred, nil
	}
	acct := account.FromCredential(cred)
	if adminSrv != nil {
		if err := adminSrv.Chown(acct.UID, acct.GID); err != nil {
			return nil, fmt.Errorf("give the admin socket to %s: %w", acct, err)
		}
	}
	if err := acct.Drop(); err != nil {
		return nil, err
	}
	log.Info("switched from root", "component", "master", "uid", acct.UID, "gid", acct.GID, "groups", acct.Groups)
	c := *cred
	c.NoSetGroups = true
	return &c, nil
}
