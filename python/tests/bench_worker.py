"""Micro-benchmark of the worker's per-request overhead (not a test).

    cd python && python3 -m tests.bench_worker [requests] [window]

Sends hello-world REQUESTs to a real worker, keeping ``window`` of them in
flight (pipelined), and reads the START frames back. Reports wall time and
the worker's own CPU time per request (from /proc), which is the runtime's
overhead plus the trivial app.
"""

import os
import socket
import sys
import threading
import time

from .support import HEADER, REQUEST, START, Master, encode, environ_payload

PAIRS = [
    ("REQUEST_METHOD", "GET"), ("PATH_INFO", "/"), ("QUERY_STRING", ""),
    ("SERVER_NAME", "localhost"), ("SERVER_PORT", "8000"),
    ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1"),
    ("REMOTE_PORT", "40000"), ("RAW_URI", "/"), ("REQUEST_URI", "/"),
    ("wsgi.url_scheme", "http"), ("HTTP_HOST", "localhost:8000"),
    ("HTTP_USER_AGENT", "bench/1.0"), ("HTTP_ACCEPT", "*/*"),
]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(master, count, window):
    payload = environ_payload(PAIRS)
    frames = [encode(REQUEST, (i % 1000000) + 1, payload) for i in range(count)]
    credit = threading.Semaphore(window)
    sock = master.data
    sock.settimeout(None)

    def sender():
        for data in frames:
            credit.acquire()
            sock.sendall(data)

    thread = threading.Thread(target=sender, daemon=True)
    cpu0 = cpu_seconds(master.proc.pid)
    began = time.perf_counter()
    thread.start()
    buf = bytearray()
    done = 0
    while done < count:
        buf += sock.recv(1 << 20)
        pos = 0
        while len(buf) - pos >= HEADER.size:
            kind, _flags, _r, _rid, length = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < HEADER.size + length:
                break
            assert kind == START, kind
            pos += HEADER.size + length
            done += 1
            credit.release()
        del buf[:pos]
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(master.proc.pid) - cpu0
    thread.join()
    return elapsed, cpu


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    windows = [int(sys.argv[2])] if len(sys.argv) > 2 else [1, 8, 64]
    for threads in (1, 2):
        master = Master("hello:app", threads=threads)
        try:
            run(master, 2000, 8)  # warm up
            for window in windows:
                n = count if window > 1 else count // 5
                elapsed, cpu = run(master, n, window)
                print("threads=%d window=%-3d %7d requests: %6.2f us/request wall, "
                      "%5.2f us/request worker CPU, %7.0f requests/s"
                      % (threads, window, n, elapsed / n * 1e6, cpu / n * 1e6,
                         n / elapsed))
        finally:
            master.close()


if __name__ == "__main__":
    main()
