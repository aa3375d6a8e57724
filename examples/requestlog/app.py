"""Request-log demo: every request is written to SQLite, the body is echoed.

A deliberately write-heavy WSGI app (one committed transaction per request)
used to characterise a server with a real database in the loop. Standard
library only, so it runs under any WSGI server:

    corral examples/requestlog/app.py
    gunicorn --chdir examples/requestlog app:app
    python examples/requestlog/app.py          # wsgiref, for a quick look

Environment:
    REQUESTLOG_DB   path of the SQLite database (default: requests.db in the
                    current directory). Created, with its table, at import.

Routes:
    GET /stats      {"requests": N}, the number of rows logged so far
                    (the /stats request itself is logged first, so it counts).
    anything else   200, text/plain, the request body echoed back.
"""

import json
import os
import sqlite3
import threading
import time

DB_PATH = os.environ.get("REQUESTLOG_DB", "requests.db")

# One connection per thread: a sqlite3 connection must not be shared between
# threads, and threaded servers (gthread, waitress) run the app concurrently.
_local = threading.local()


def get_db():
    conn = getattr(_local, "conn", None)
    if conn is None:
        # isolation_level=None: we issue BEGIN ourselves, so the module never
        # opens an implicit (deferred) transaction behind our back.
        conn = sqlite3.connect(DB_PATH, isolation_level=None)
        # WAL lets readers run alongside the single writer and is what
        # Litestream replicates from.
        # Several worker processes write to the same file: wait for the lock
        # instead of failing with "database is locked". Set first, so the
        # pragmas below wait too.
        conn.execute("pragma busy_timeout=10000")
        conn.execute("pragma journal_mode=WAL")
        # In WAL mode, NORMAL only syncs at checkpoints: still durable against
        # application crashes, and far cheaper than FULL per commit.
        conn.execute("pragma synchronous=normal")
        conn.execute("pragma temp_store=memory")
        _local.conn = conn
    return conn


def init_db():
    # Every worker process runs this at import, possibly at the same moment.
    # Switching a new file to WAL takes an exclusive lock, and SQLite does
    # not wait on its busy timeout when two connections would deadlock
    # upgrading their locks: it answers "database is locked" at once. So the
    # set-up is retried for a while instead of failing the worker's boot.
    deadline = time.monotonic() + 10
    while True:
        conn = sqlite3.connect(DB_PATH, timeout=10)
        try:
            conn.execute("pragma journal_mode=WAL")
            conn.execute(
                """
                create table if not exists requests (
                    id integer primary key autoincrement,
                    timestamp real not null,
                    method text not null,
                    path text not null,
                    content_length integer not null,
                    remote_addr text
                )
                """
            )
            conn.commit()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        time.sleep(0.05)

init_db()


def read_body(environ):
    # Read exactly CONTENT_LENGTH bytes: reading wsgi.input to EOF is not
    # allowed by PEP 3333 and would block on a kept-alive connection.
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    return environ["wsgi.input"].read(length)


def log_request(environ, body_length):
    db = get_db()
    # BEGIN IMMEDIATE takes the write lock up front; a deferred transaction
    # that upgrades later can fail with SQLITE_BUSY without waiting.
    db.execute("begin immediate")
    try:
        db.execute(
            "insert into requests (timestamp, method, path, content_length, remote_addr)"
            " values (?, ?, ?, ?, ?)",
            (
                time.time(),
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                body_length,
                environ.get("REMOTE_ADDR"),
            ),
        )
        db.execute("commit")
    except BaseException:
        db.execute("rollback")
        raise


def app(environ, start_response):
    body = read_body(environ)
    log_request(environ, len(body))

    if environ.get("PATH_INFO") == "/stats" and environ["REQUEST_METHOD"] == "GET":
        (count,) = get_db().execute("select count(*) from requests").fetchone()
        out = json.dumps({"requests": count}).encode()
        content_type = "application/json"
    else:
        out = body
        content_type = "text/plain"

    start_response(
        "200 OK",
        [("Content-Type", content_type), ("Content-Length", str(len(out)))],
    )
    return [out]


application = app


if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    port = int(os.environ.get("PORT", "8000"))
    print(f"serving on http://127.0.0.1:{port}/ (db: {DB_PATH})")
    make_server("127.0.0.1", port, app).serve_forever()
