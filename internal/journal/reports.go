package journal

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// Reports answers the usual questions about a request journal: `corral
// journal top|slow|errors|clients`. It reads the database without
// writing, while corral writes it.
type Reports struct {
	db *sql.DB
}

// OpenReports opens the journal at path for reading.
func OpenReports(path string) (*Reports, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoJournal, err)
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, fmt.Errorf("request journal %s: %w", path, err)
	}
	return &Reports{db: db}, nil
}

// Close closes the database.
func (r *Reports) Close() error { return r.db.Close() }

// Report names, with what each shows.
var reportSQL = map[string]struct {
	columns []string
	query   string
}{
	// The busiest routes (paths where no route is known).
	"top": {
		[]string{"requests", "req/s", "avg_ms", "max_ms", "5xx", "route"},
		`SELECT count(*), printf('%.2f', count(*) / max(1.0, :to - (SELECT min(ts) FROM requests WHERE rowid >= :start AND ts >= :from))),
			printf('%.1f', avg(duration_ms)), printf('%.1f', max(duration_ms)), sum(status >= 500), coalesce(route, path)
		FROM requests WHERE rowid >= :start AND ts >= :from GROUP BY coalesce(route, path) ORDER BY count(*) DESC LIMIT :limit`,
	},
	// The slowest requests, one per line.
	"slow": {
		[]string{"time", "ms", "status", "method", "path", "worker", "request_id"},
		`SELECT strftime('%Y-%m-%d %H:%M:%f', ts, 'unixepoch') || ' UTC', printf('%.1f', duration_ms), status, method, path,
			coalesce(worker, '-'), coalesce(request_id, '-')
		FROM requests WHERE rowid >= :start AND ts >= :from ORDER BY duration_ms DESC LIMIT :limit`,
	},
	// Error answers (4xx and 5xx) by status and route, with the last one.
	"errors": {
		[]string{"count", "status", "route", "last", "last_request_id"},
		`SELECT count(*), status, coalesce(route, path), strftime('%Y-%m-%d %H:%M:%S', max(ts), 'unixepoch') || ' UTC',
			coalesce(request_id, '-')
		FROM requests WHERE rowid >= :start AND ts >= :from AND status >= 400 GROUP BY status, coalesce(route, path)
		ORDER BY count(*) DESC LIMIT :limit`,
	},
	// The clients sending the most requests.
	"clients": {
		[]string{"requests", "4xx", "5xx", "bytes_out", "avg_ms", "client"},
		`SELECT count(*), sum(status >= 400 AND status < 500), sum(status >= 500), sum(bytes_out),
			printf('%.1f', avg(duration_ms)), coalesce(client, '-')
		FROM requests WHERE rowid >= :start AND ts >= :from GROUP BY client ORDER BY count(*) DESC LIMIT :limit`,
	},
}

// ReportNames lists the reports Report knows.
var ReportNames = []string{"top", "slow", "errors", "clients"}

// Report runs the report name over the rows since since (at most limit
// lines) and returns its column names and rows as text.
func (r *Reports) Report(ctx context.Context, name string, since, now time.Time, limit int) ([]string, [][]string, error) {
	rep, ok := reportSQL[name]
	if !ok {
		return nil, nil, fmt.Errorf("unknown report %q", name)
	}
	from := float64(since.UnixMicro()) / 1e6
	to := float64(now.UnixMicro()) / 1e6
	start, err := rowidSince(ctx, r.db, from)
	if err != nil {
		return nil, nil, fmt.Errorf("journal %s: %w", name, err)
	}
	rows, err := r.db.QueryContext(ctx, rep.query,
		sql.Named("from", from), sql.Named("to", to), sql.Named("limit", limit), sql.Named("start", start))
	if err != nil {
		return nil, nil, fmt.Errorf("journal %s: %w", name, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(rep.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("journal %s: %w", name, err)
		}
		line := make([]string, len(vals))
		for i, v := range vals {
			line[i] = v.String
			if !v.Valid {
				line[i] = "-"
			}
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("journal %s: %w", name, err)
	}
	return rep.columns, out, nil
}
