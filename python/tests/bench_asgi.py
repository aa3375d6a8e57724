"""Micro-benchmark of an ASGI worker's per-request overhead (not a test).

    cd python && python3 -m tests.bench_asgi [requests] [window]

Sends hello-world REQUESTs (ASGI scope blocks) to a real ASGI worker,
keeping ``window`` of them in flight, and reads the START frames back.
Reports wall time and the worker's own CPU time per request (from /proc):
the runtime's overhead plus the trivial app. Compare with bench_worker
(the WSGI path).
"""

import struct
import sys
import threading
import time

from .bench_worker import cpu_seconds
from .support import HEADER, REQUEST, START, AsgiMaster, encode, scope_block

HEADERS = (("host", "localhost:8000"), ("user-agent", "bench/1.0"), ("accept", "*/*"))


def run(master, count, window):
    block = scope_block(headers=HEADERS)
    payload = struct.pack("!I", len(block)) + block
    # Ids are reused once their request is complete, as the master does.
    ids = window + 1
    frames = [encode(REQUEST, (i % ids) + 1, payload) for i in range(count)]
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
    master = AsgiMaster("asgi_hello:app", connections=1000)
    try:
        run(master, 2000, 8)  # warm up
        for window in windows:
            n = count if window > 1 else count // 5
            elapsed, cpu = run(master, n, window)
            print("asgi window=%-3d %7d requests: %6.2f us/request wall, "
                  "%5.2f us/request worker CPU, %7.0f requests/s"
                  % (window, n, elapsed / n * 1e6, cpu / n * 1e6, n / elapsed))
    finally:
        master.close()


if __name__ == "__main__":
    main()
