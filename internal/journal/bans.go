// Package journal owns corral's SQLite databases. This file is the ban
// store: the guard's bans, kept across restarts. Writes are queued and
// applied by one goroutine in batches, so a ban never waits for the disk
// on the request path.
//
// The package imports none of the server's packages: its Ban is the
// stored row, and cmd/corral adapts Bans to the guard's Store.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, without cgo
)

// Ban is one stored ban: a row of the bans table. Addr is the client key
// as the guard writes it (an address or an IPv6 /64). Until is zero for a
// ban that never expires.
// Offences counts the bans of this client so far (this one included): the
// guard escalates ban times with it, so a stored ban outlives its Until
// for a while to remember it.
type Ban struct {
	Addr     string    `json:"addr"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Jail     string    `json:"jail"`
	Reason   string    `json:"reason"`
	Offences int       `json:"offences"`
	Status   int       `json:"status"`
}

// Bans is the ban store in one SQLite file.
type Bans struct {
	db  *sql.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*Ban // nil value = delete
	order   []string
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  bool
	errOnce bool
}

const schema = `
CREATE TABLE IF NOT EXISTS bans (
	addr     TEXT PRIMARY KEY,
	since    INTEGER NOT NULL,
	until    INTEGER NOT NULL,
	jail     TEXT NOT NULL,
	reason   TEXT NOT NULL,
	offences INTEGER NOT NULL,
	status   INTEGER NOT NULL
);`

// maxPending bounds the queue of writes not yet applied; past it new
// writes are dropped (and the drop logged once), so a storm of bans cannot
// grow memory while the disk is stuck.
const maxPending = 100000

// OpenBans opens (creating it and its directory) the ban store at path.
// Rows whose ban ended before forgetBefore are deleted.
func OpenBans(path string, forgetBefore time.Time, log *slog.Logger) (*Bans, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ban store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ban store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("ban store %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM bans WHERE until != 0 AND until < ?`, forgetBefore.UnixMilli()); err != nil {
		db.Close()
		return nil, fmt.Errorf("ban store %s: forget old bans: %w", path, err)
	}
	b := &Bans{db: db, log: log.With("component", "journal"), pending: map[string]*Ban{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.writer()
	return b, nil
}

// Load returns every stored ban, expired ones included (for escalation).
func (b *Bans) Load(ctx context.Context) ([]Ban, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT addr, since, until, jail, reason, offences, status FROM bans`)
	if err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var x Ban
		var since, until int64
		if err := rows.Scan(&x.Addr, &since, &until, &x.Jail, &x.Reason, &x.Offences, &x.Status); err != nil {
			return nil, fmt.Errorf("load bans: %w", err)
		}
		x.Since = time.UnixMilli(since)
		if until != 0 {
			x.Until = time.UnixMilli(until)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load bans: %w", err)
	}
	return out, nil
}

// Put stores ban x (replacing any ban of the same address), soon.
func (b *Bans) Put(x Ban) { b.queue(x.Addr, &x) }

// Delete removes the ban of addr, soon.
func (b *Bans) Delete(addr string) { b.queue(addr, nil) }

func (b *Bans) queue(addr string, x *Ban) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if _, ok := b.pending[addr]; !ok {
		if len(b.pending) >= maxPending {
			if !b.errOnce {
				b.errOnce = true
				b.log.Error("ban store is not keeping up; dropping writes", "pending", len(b.pending))
			}
			b.mu.Unlock()
			return
		}
		b.order = append(b.order, addr)
	}
	b.pending[addr] = x
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Flush applies every queued write now, giving up when ctx is done (the
// writes not applied then are lost).
func (b *Bans) Flush(ctx context.Context) error {
	b.mu.Lock()
	pending, order := b.pending, b.order
	b.pending, b.order = map[string]*Ban{}, nil
	b.mu.Unlock()
	if len(order) == 0 {
		return nil
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store bans: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, addr := range order {
		x := pending[addr]
		if x == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM bans WHERE addr = ?`, addr)
		} else {
			var until int64
			if !x.Until.IsZero() {
				until = x.Until.UnixMilli()
			}
			_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO bans (addr, since, until, jail, reason, offences, status) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				x.Addr, x.Since.UnixMilli(), until, x.Jail, x.Reason, x.Offences, x.Status)
		}
		if err != nil {
			return fmt.Errorf("store ban of %s: %w", addr, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store bans: %w", err)
	}
	return nil
}

func (b *Bans) writer() {
	defer close(b.done)
	failing := false
	for {
		select {
		case <-b.kick:
		case <-b.stop:
			return
		}
		// Batch what arrives in the next moment into one transaction.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-b.stop:
			t.Stop()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		err := b.Flush(ctx)
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			b.log.Error("writing bans failed", "error", err)
		case err == nil && failing:
			failing = false
			b.log.Info("writing bans works again")
		}
	}
}

// flushTimeout bounds one batch of writes from the background writer,
// and the last one in Close.
const flushTimeout = 30 * time.Second

// Close applies the queued writes (for up to flushTimeout) and closes the
// database. Puts and Deletes after Close are dropped. Close is safe to
// call more than once.
func (b *Bans) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	err := b.Flush(ctx)
	return errors.Join(err, b.db.Close())
}
