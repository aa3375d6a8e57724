package main

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"corral/internal/account"
	"corral/internal/admin"
)

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
