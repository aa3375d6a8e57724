package guard

import (
	"context"
	"time"
)

// Ban is a ban as a Store keeps it.
type Ban struct {
	// Addr is the client: an IPv4 address, or an IPv6 /64 written as a
	// prefix (2001:db8:1:2::/64), as Bans lists it.
	Addr  string
	Since time.Time
	// Until is when the ban ends; zero for a ban that never does.
	Until  time.Time
	Jail   string // the jail that banned, or who asked: "manual", "app"
	Reason string
	// Offences counts the bans of this client so far, this one included:
	// the guard escalates ban times with it, so a Store should keep a ban
	// for a while (a day) after its Until to remember it.
	Offences int
	Status   int // the answer to the banned client: 403, or 429 for rate-limit bans
}

// Store keeps bans across restarts, and, shared, across the instances of
// a fleet. The guard calls Put and Delete on the request path: they must
// not block (queue the write and apply it in the background). All methods
// must be safe for concurrent use. The SQLite store in the state directory
// is one; its owner opens it, hands it to Start, and closes it after the
// guard's Shutdown.
type Store interface {
	// Load returns every stored ban, ended ones included (their Offences
	// escalate the client's next ban).
	Load(ctx context.Context) ([]Ban, error)
	// Put stores b, replacing any ban of the same Addr.
	Put(b Ban)
	// Delete removes the ban of addr (a Ban's Addr), if any.
	Delete(addr string)
	// Flush applies every queued Put and Delete, giving up when ctx is
	// done.
	Flush(ctx context.Context) error
}
