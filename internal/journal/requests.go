package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one row of the requests table: one answered request.
type Request struct {
	Time      time.Time     // when the answer ended
	Method    string        // as the client sent it
	Path      string        // the URL path, without the query
	Route     string        // the app's route rule as `corral routes` prints it; "" = none known
	Status    int           // the status answered; 499 = the client went away first
	Duration  time.Duration // from the request's head to the answer's end
	BytesIn   int64         // request body bytes after decoding
	BytesOut  int64         // response body bytes
	Client    string        // the client address (a trusted proxy's word for it)
	Worker    int           // pid of the worker that ran it; 0 = none (static files, refusals)
	RequestID string
}

// RequestsConfig tunes a request journal. Zero values take the defaults.
type RequestsConfig struct {
	// FlushInterval is the flush window: a request's row is committed
	// within about one interval of its answer (default 1s).
	FlushInterval time.Duration
	// MaxAge deletes rows older than this; 0 = keep them by age.
	MaxAge time.Duration
	// MaxSize deletes the oldest rows when the rows take more than this
	// many bytes of the database; 0 = no size limit.
	MaxSize int64
	// Buffer is how many rows may wait for the writer (while as many more
	// are being written); past it rows are dropped and counted (default
	// 32768).
	Buffer int
}

// Requests is the request journal: a SQLite database in WAL mode, written
// in batches by one goroutine. Add never waits for the writer (it holds a
// mutex for one append): when the writer falls
// behind (a slow disk, a long checkpoint) rows are dropped and counted.
type Requests struct {
	db  *sql.DB
	log *slog.Logger
	cfg RequestsConfig
	// pending holds the rows Add queued, at most cfg.Buffer; the writer
	// swaps it for an empty slice and writes what it took. A mutex and a
	// slice rather than a channel: a channel receive per row would wake
	// the writer goroutine once per request.
	mu      sync.Mutex
	pending []Request
	kick    chan struct{} // a batch's worth is waiting

	dropped atomic.Uint64
	written atomic.Uint64

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	closed    atomic.Bool
	flushReq  chan chan struct{}
}

const requestsSchema = `
CREATE TABLE IF NOT EXISTS requests (
	ts          REAL NOT NULL,
	method      TEXT NOT NULL,
	path        TEXT NOT NULL,
	route       TEXT,
	status      INTEGER NOT NULL,
	duration_ms REAL NOT NULL,
	bytes_in    INTEGER NOT NULL,
	bytes_out   INTEGER NOT NULL,
	client      TEXT,
	worker      INTEGER,
	request_id  TEXT
);`

// maxBatch bounds the rows written in one transaction, so a backlog is
// written in steps that each hold the write lock briefly.
const maxBatch = 4096

// OpenRequests opens (creating it and its directory) the request journal
// at path and starts its writer.
func OpenRequests(path string, cfg RequestsConfig, log *slog.Logger) (*Requests, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 32768
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("request journal: %w", err)
	}
	db, err := openDB(path, false)
	if err != nil {
		return nil, fmt.Errorf("request journal %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// auto_vacuum only takes effect before the first table is created; it
	// lets retention give the freed pages back to the file system.
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		db.Close()
		return nil, fmt.Errorf("request journal %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, requestsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("request journal %s: %w", path, err)
	}
	j := &Requests{db: db, log: log.With("component", "journal"), cfg: cfg, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), flushReq: make(chan chan struct{})}
	if err := j.retain(ctx, time.Now()); err != nil {
		j.log.Warn("journal retention failed", "error", err)
	}
	go j.writer()
	return j, nil
}

// openDB opens a SQLite file for the journal: WAL, a busy timeout (so a
// reader such as Litestream holding a lock makes a write wait, not fail),
// synchronous=NORMAL (a commit is durable at the next checkpoint; a
// power cut may lose the last ones, a crash of corral loses none).
func openDB(path string, readOnly bool) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)"
	if readOnly {
		dsn += "&mode=ro"
	} else {
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Add queues r for writing and returns at once. When the buffer is full r
// is dropped and counted in Dropped. Rows added after Close are dropped
// silently.
func (j *Requests) Add(r Request) {
	j.mu.Lock()
	if n := len(j.pending); n < j.cfg.Buffer && !j.closed.Load() {
		j.pending = append(j.pending, r)
		j.mu.Unlock()
		if n+1 == maxBatch {
			select {
			case j.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	j.mu.Unlock()
	if !j.closed.Load() {
		j.dropped.Add(1)
	}
}

// Dropped is the number of rows dropped so far because the buffer was
// full: the writer could not keep up. A metric reads it.
func (j *Requests) Dropped() uint64 { return j.dropped.Load() }

// Written is the number of rows committed so far.
func (j *Requests) Written() uint64 { return j.written.Load() }

// Flush waits until the rows added before it are committed, or ctx ends.
func (j *Requests) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case j.flushReq <- ch:
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *Requests) writer() {
	defer close(j.done)
	tick := time.NewTicker(j.cfg.FlushInterval)
	defer tick.Stop()
	const retainEvery = time.Minute
	lastRetain := time.Now()
	var spare []Request // the slice pending is swapped with
	failing := false
	// Drops are logged when they start and when they stop, with the count
	// in between: one line per state change, never one per row.
	var seenDropped uint64
	dropping := false
	noteDrops := func() {
		d := j.dropped.Load()
		switch {
		case d > seenDropped && !dropping:
			dropping = true
			j.log.Warn("journal buffer full; dropping rows", "buffer", j.cfg.Buffer)
		case d == seenDropped && dropping:
			dropping = false
			j.log.Info("journal keeping up again", "dropped_total", d)
		}
		seenDropped = d
	}
	write := func(batch []Request) {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		err := j.insert(ctx, batch)
		cancel()
		switch {
		case err != nil:
			j.dropped.Add(uint64(len(batch)))
			if !failing {
				failing = true
				j.log.Error("writing the request journal failed; dropping rows", "error", err)
			}
		case failing:
			failing = false
			j.log.Info("writing the request journal works again")
		}
		if err == nil {
			j.written.Add(uint64(len(batch)))
		}
	}
	// flush takes every queued row and writes it, a transaction per
	// maxBatch rows, so the write lock is never held long.
	flush := func() {
		j.mu.Lock()
		taken := j.pending
		j.pending = spare[:0]
		j.mu.Unlock()
		for rows := taken; len(rows) > 0; {
			n := min(len(rows), maxBatch)
			write(rows[:n])
			rows = rows[n:]
		}
		clear(taken) // let the strings go
		spare = taken[:0]
	}
	for {
		select {
		case <-j.kick:
			flush()
		case <-tick.C:
			flush()
			noteDrops()
			if now := time.Now(); now.Sub(lastRetain) >= retainEvery {
				lastRetain = now
				ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
				if err := j.retain(ctx, now); err != nil {
					j.log.Warn("journal retention failed", "error", err)
				}
				cancel()
			}
		case ch := <-j.flushReq:
			flush()
			close(ch)
		case <-j.stop:
			flush()
			return
		}
	}
}

// rowsPerInsert is how many rows one INSERT statement carries: one
// statement per row spends more in database/sql than in SQLite.
const rowsPerInsert = 64

const insertHead = `INSERT INTO requests (ts, method, path, route, status, duration_ms, bytes_in, bytes_out, client, worker, request_id) VALUES `

var (
	insertOne  = insertHead + "(?,?,?,?,?,?,?,?,?,?,?)"
	insertMany = insertHead + strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,?,?),", rowsPerInsert), ",")
)

func (j *Requests) insert(ctx context.Context, rows []Request) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal requests: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	args := make([]any, 0, 11*rowsPerInsert)
	var many, one *sql.Stmt
	for len(rows) > 0 {
		n, st := 1, one
		if len(rows) >= rowsPerInsert {
			n, st = rowsPerInsert, many
		}
		if st == nil {
			q := insertOne
			if n > 1 {
				q = insertMany
			}
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("journal requests: %w", err)
			}
			defer st.Close()
			if n > 1 {
				many = st
			} else {
				one = st
			}
		}
		args = args[:0]
		for i := range rows[:n] {
			args = appendRow(args, &rows[i])
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("journal requests: %w", err)
		}
		rows = rows[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal requests: %w", err)
	}
	return nil
}

// appendRow appends the column values of r; unknown values are NULL.
func appendRow(args []any, r *Request) []any {
	var route, client, id, worker any
	if r.Route != "" {
		route = r.Route
	}
	if r.Client != "" {
		client = r.Client
	}
	if r.RequestID != "" {
		id = r.RequestID
	}
	if r.Worker != 0 {
		worker = int64(r.Worker)
	}
	ts := float64(r.Time.UnixMicro()) / 1e6
	ms := float64(r.Duration.Microseconds()) / 1000
	return append(args, ts, r.Method, r.Path, route, int64(r.Status), ms, r.BytesIn, r.BytesOut, client, worker, id)
}

// retain deletes rows past MaxAge, then the oldest rows while the table
// takes more than MaxSize, in steps that each hold the write lock
// briefly, and gives the freed pages back.
func (j *Requests) retain(ctx context.Context, now time.Time) error {
	deleted := int64(0)
	if j.cfg.MaxAge > 0 {
		cut, err := rowidSince(ctx, j.db, float64(now.Add(-j.cfg.MaxAge).UnixMicro())/1e6)
		if err != nil {
			return fmt.Errorf("journal retention by age: %w", err)
		}
		for {
			res, err := j.db.ExecContext(ctx, `DELETE FROM requests WHERE rowid < min(?, (SELECT min(rowid) FROM requests) + 10000)`, cut)
			if err != nil {
				return fmt.Errorf("journal retention by age: %w", err)
			}
			n, _ := res.RowsAffected()
			deleted += n
			if n == 0 {
				break
			}
		}
	}
	if j.cfg.MaxSize > 0 {
		for range 100 {
			used, err := j.usedBytes(ctx)
			if err != nil {
				return err
			}
			if used <= j.cfg.MaxSize {
				break
			}
			var lo, hi sql.NullInt64
			if err := j.db.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM requests`).Scan(&lo, &hi); err != nil {
				return fmt.Errorf("journal retention by size: %w", err)
			}
			if !lo.Valid {
				break
			}
			// Rowids grow with time: delete the oldest share that brings the
			// table to 90% of the limit, at most 10,000 rows a step.
			rows := hi.Int64 - lo.Int64 + 1
			n := int64(float64(rows) * float64(used-j.cfg.MaxSize*9/10) / float64(used))
			n = max(1, min(n, 10000))
			res, err := j.db.ExecContext(ctx, `DELETE FROM requests WHERE rowid < ?`, lo.Int64+n)
			if err != nil {
				return fmt.Errorf("journal retention by size: %w", err)
			}
			k, _ := res.RowsAffected()
			deleted += k
			if _, err := j.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
				return fmt.Errorf("journal retention by size: %w", err)
			}
		}
	}
	if deleted > 0 {
		if _, err := j.db.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
			return fmt.Errorf("journal retention: %w", err)
		}
		j.log.Info("journal rows deleted by retention", "rows", deleted)
	}
	return nil
}

// rowidSince returns the first rowid of the rows at or after ts (Unix
// seconds). Rows go in in the order their answers ended, give or take a
// flush window when several instances share the file, so rowid order is
// time order and a binary search over rowids finds the start of a period
// without an index on ts (which would double the writer's cost per row).
func rowidSince(ctx context.Context, db *sql.DB, ts float64) (int64, error) {
	var lo, hi sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT min(rowid), max(rowid) FROM requests`).Scan(&lo, &hi); err != nil {
		return 0, fmt.Errorf("journal: %w", err)
	}
	if !lo.Valid {
		return 0, nil
	}
	l, h := lo.Int64, hi.Int64+1 // the answer is in [l, h]; h = no row
	for l < h {
		m := l + (h-l)/2
		var id int64
		var t float64
		// Deletions leave gaps: the first row at or after m.
		if err := db.QueryRowContext(ctx, `SELECT rowid, ts FROM requests WHERE rowid >= ? ORDER BY rowid LIMIT 1`, m).Scan(&id, &t); err != nil {
			return 0, fmt.Errorf("journal: %w", err)
		}
		if t >= ts {
			h = m
		} else {
			l = id + 1
		}
	}
	return l, nil
}

// usedBytes is the size of the pages in use (the file less its free list).
func (j *Requests) usedBytes(ctx context.Context) (int64, error) {
	var pages, free, size int64
	err := j.db.QueryRowContext(ctx, `SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size`).Scan(&pages, &free, &size)
	if err != nil {
		return 0, fmt.Errorf("journal size: %w", err)
	}
	return (pages - free) * size, nil
}

// Shutdown writes the rows still queued (giving up when ctx ends) and
// closes the database. Rows added afterwards are dropped. Safe to call more
// than once, and with Close.
func (j *Requests) Shutdown(ctx context.Context) error {
	var err error
	j.closeOnce.Do(func() {
		j.closed.Store(true)
		close(j.stop)
		select {
		case <-j.done:
		case <-ctx.Done():
			err = fmt.Errorf("journal: flush on shutdown: %w", ctx.Err())
			return // the writer may still be writing: leave the db to the exit
		}
		err = j.db.Close()
	})
	return err
}

// Close is Shutdown with flushTimeout.
func (j *Requests) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	return j.Shutdown(ctx)
}

// ErrNoJournal is returned by OpenReader for a path with no journal.
var ErrNoJournal = errors.New("no request journal there")
