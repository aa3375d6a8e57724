"""Turn one bench/run scenario's raw rows into the markdown report.

Usage: python report.py WORK/<scenario>.meta WORK/<scenario>.tsv > results/<scenario>.md

Called by bench/run; standard library only. The .meta file holds tab-separated
key/value lines (plus "cmd SERVER WORKLOAD COMMAND" lines), the .tsv one row
per measurement:

    workload server phase status rps p50_ms p99_ms errors rss_idle_kib rss_end_kib rss_peak_kib note

and, in the cpu scenario, five more: master_us workers_us client_us
busy_pct other_pct (CPU microseconds per request of the server's master,
of its workers and of wrk; how busy the machine was, and with what else).
The memory scenario has rows of its own (MEMORY_FIELDS).

status is ok, missing (not built / not applicable) or failed (did not start);
"-" marks an empty field.
"""

import sys

NAMES = {
    "corral": "corral",
    "gunicorn-sync": "gunicorn sync",
    "gunicorn-gthread": "gunicorn gthread (4 threads)",
    "gunicorn-gevent": "gunicorn gevent",
    "uwsgi": "uWSGI (--http-socket, no keep-alive)",
    "uwsgi-http11": "uWSGI keep-alive (--http11-socket)",
    "uwsgi-router": "uWSGI router keep-alive (--http)",
    "waitress": "Waitress",
    "granian": "Granian",
    "go-ceiling": "Go net/http (ceiling)",
    "go-raw": "Go without net/http (floor of a Go front end)",
    # ASGI scenarios
    "uvicorn": "uvicorn",
    "gunicorn": "gunicorn asgi",
    "hypercorn": "Hypercorn",
}

# How the ASGI workloads are labelled in the report.
ASGI_WORKLOADS = {
    "fastapi": "fastapi (GET /items/42)",
    "hello": "hello (raw ASGI)",
    "websocket": "websocket echo (messages/s)",
}

# The project's targets (bench/README.md): (workload, peer, minimum ratio of
# corral's rps to the peer's).
THROUGHPUT_TARGETS = [
    ("flask", "gunicorn-gthread", 2.0),
    ("flask", "uwsgi", 1.5),
    ("flask", "granian", 1.0),
    ("requestlog", "gunicorn-gthread", 2.0),
    ("requestlog", "uwsgi", 1.5),
    ("requestlog", "granian", 1.0),
    ("hello", "go-ceiling", 0.5),
    # Issue 12's targets (peers at their best): uWSGI with keep-alive is
    # the better of its two keep-alive rows.
    ("hello", "granian", 1.2),
    ("hello", "go-ceiling", 0.6),
    ("flask", ("uwsgi-http11", "uwsgi-router"), 1.1),
    ("flask", "granian", 1.2),
    ("requestlog", ("uwsgi-http11", "uwsgi-router"), 1.1),
    ("requestlog", "granian", 1.2),
]
# (workload, peer, minimum ratio of corral's rps to the peer's); the
# websocket target compares with the best peer (ASGI_WS_BEST).
ASGI_TARGETS = [
    ("fastapi", "granian", 1.2),
    ("fastapi", "uvicorn", 1.5),
    ("hello", "uvicorn", 1.0),
]
ASGI_WS_BEST = 1.0
SLOWLORIS_KEEP = 0.90
RSS_IDLE_MAX_MIB = 30
RSS_LOAD_MAX_MIB = 100

FIELDS = "workload server phase status rps p50 p99 errors rss_idle rss_end rss_peak note master_us workers_us client_us busy other".split()
MEMORY_FIELDS = "mode connections status open answered statuses rss_before rss_with rss_peak note".split()

# How the cpu scenario's workloads are labelled, and issue 12's targets for
# the master's CPU per request (µs).
CPU_WORKLOADS = {
    "hello": "hello (WSGI)",
    "flask": "flask (WSGI)",
    "asgi-hello": "hello (raw ASGI)",
    "fastapi": "fastapi (GET /items/42)",
}
CPU_MASTER_MAX_US = {"hello": 10, "flask": 15}
# Memory targets (issue 12): KiB per open connection with 10,000 of them,
# and the peak under a 2,000-connection overload.
MEMORY_PER_CONN_MAX_KIB = 25
MEMORY_OVERLOAD_MAX_MIB = 100


def load(meta_path, tsv_path, fields=FIELDS):
    meta, cmds = {}, {}
    with open(meta_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "cmd":
                cmds[(parts[1], parts[2])] = parts[3]
            else:
                meta[parts[0]] = parts[1] if len(parts) > 1 else ""
    rows = []
    with open(tsv_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += ["-"] * (len(fields) - len(parts))
            rows.append(dict(zip(fields, parts)))
    return meta, cmds, rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt_rps(row):
    v = num(row["rps"]) if row["status"] == "ok" else None
    return "–" if v is None else f"{v:,.0f}"


def fmt(v, digits=2):
    v = num(v)
    return "–" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    a, b = num(a), num(b)
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def mib(kib):
    v = num(kib)
    return None if v is None else v / 1024


def fmt_mib(kib):
    v = mib(kib)
    return "–" if v is None else f"{v:.1f} MiB"


def verdict(value, ok):
    if value is None:
        return "not measured"
    return "met" if ok else "**not met**"


def find(rows, workload, server, phase="-"):
    for r in rows:
        if r["workload"] == workload and r["server"] == server and r["phase"] == phase:
            return r
    return None


def ok_rps(row):
    return row["rps"] if row is not None and row["status"] == "ok" else None


def note_of(row):
    if row["status"] != "ok":
        return row["note"] if row["note"] != "-" else row["status"]
    return "" if row["note"] == "-" else row["note"]


def best_of(rows, workload, peers):
    """(server, rps) of the fastest of peers (one name or a tuple) on workload."""
    if isinstance(peers, str):
        return peers, ok_rps(find(rows, workload, peers))
    best, best_rps = " or ".join(peers), None
    for p in peers:
        v = ok_rps(find(rows, workload, p))
        if v is not None and (best_rps is None or num(v) > num(best_rps)):
            best, best_rps = p, v
    return best, best_rps


def header(meta, title):
    out = [f"# corral benchmark: {title}", ""]
    out.append(f"- date: {meta.get('date', '?')}")
    out.append(f"- command: `{meta.get('command', '?')}`")
    out.append(f"- load: `{meta.get('wrk', '?')}` after {meta.get('warmup', '?')} s of warm-up with the same settings")
    if "paths" in meta:
        out.append(f"  ({meta['paths']})")
    if "wsload" in meta:
        out.append(f"- WebSocket load: `{meta['wsload']}` after {meta.get('warmup', '?')} s of warm-up with the same settings")
    if "slowloris" in meta.get("scenario", ""):
        out.append(f"- attack: `{meta.get('slowhttptest', '?')}`")
    out.append(f"- machine: {meta.get('machine', '?')}")
    if "load" in meta:
        out.append(f"- machine load: {meta['load']}")
    out.append(f"- corral: {meta.get('corral', '?')}")
    out.append(f"- {meta.get('python', '?')}; {meta.get('go', '?')}")
    out.append(f"- peers: {meta.get('peers', '?').strip()}")
    out.append(f"- tools: {meta.get('tools', '?')}")
    out.append("")
    out.append(
        "rps = requests per second over the measured run; p50/p99 = wrk's latency "
        "percentiles in ms; errors = non-2xx responses + socket errors "
        "(connect, read, write, timeout). The client (wrk) shares the machine's "
        "cores with the server."
    )
    out.append("")
    return out


def memory_section(rows, phase_filter):
    out = ["## corral master memory", ""]
    out.append(
        "VmRSS of the corral master process only (its Python workers are not "
        "counted), from /proc/PID/status: idle = after it answered its first "
        "request, end = right after the measured load; peak = VmHWM."
    )
    out.append("")
    out.append("| workload | idle | end of load | peak |")
    out.append("|---|---:|---:|---:|")
    worst_idle = worst_end = None
    any_row = False
    for r in rows:
        if r["server"] != "corral" or not phase_filter(r):
            continue
        any_row = True
        if r["status"] != "ok":
            out.append(f"| {r['workload']} | – | – | – |")
            continue
        out.append(f"| {r['workload']} | {fmt_mib(r['rss_idle'])} | {fmt_mib(r['rss_end'])} | {fmt_mib(r['rss_peak'])} |")
        i, e = mib(r["rss_idle"]), mib(r["rss_end"])
        if i is not None:
            worst_idle = i if worst_idle is None else max(worst_idle, i)
        if e is not None:
            worst_end = e if worst_end is None else max(worst_end, e)
    if not any_row:
        out.append("| – | – | – | – |")
    out.append("")
    return out, worst_idle, worst_end


def commands_section(meta, cmds, pairs):
    out = ["## Server command lines", ""]
    out.append("PORT is a free port picked per run; paths are relative to the repository.")
    out.append("")
    seen = set()
    for server, workload in pairs:
        c = cmds.get((server, workload))
        if c is None or (server, workload) in seen:
            continue
        seen.add((server, workload))
        out.append(f"- {NAMES.get(server, server)}, {workload}: `{c}`")
    out.append("")
    return out


def throughput(meta, cmds, rows):
    out = header(meta, "throughput")
    workloads = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])

    out += ["## Results", ""]
    out.append("corral ÷ server: corral's rps divided by that server's rps on the same workload (above 1 = corral is faster).")
    out.append("")
    out.append("| workload | server | rps | p50 (ms) | p99 (ms) | errors | corral ÷ server | notes |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for w in workloads:
        corral_rps = ok_rps(find(rows, w, "corral"))
        for r in rows:
            if r["workload"] != w:
                continue
            is_ok = r["status"] == "ok"
            rr = "" if r["server"] == "corral" else fmt_ratio(ratio(corral_rps, ok_rps(r)))
            out.append(
                f"| {w} | {NAMES.get(r['server'], r['server'])} | {fmt_rps(r)} "
                f"| {fmt(r['p50']) if is_ok else '–'} | {fmt(r['p99']) if is_ok else '–'} "
                f"| {r['errors'] if is_ok else '–'} | {rr} | {note_of(r)} |"
            )
    out.append("")

    mem, worst_idle, worst_end = memory_section(rows, lambda r: True)

    out += ["## Targets (2 cores)", ""]
    out.append("| target | measured | |")
    out.append("|---|---:|---|")
    for w, peer, want in THROUGHPUT_TARGETS:
        if w not in workloads:
            continue
        peer, peer_rps = best_of(rows, w, peer)
        r = ratio(ok_rps(find(rows, w, "corral")), peer_rps)
        out.append(f"| {w}: corral ≥ {want:g}× {NAMES.get(peer, peer)} | {fmt_ratio(r)} | {verdict(r, r is not None and r >= want)} |")
    out.append(
        f"| corral master idle RSS ≤ {RSS_IDLE_MAX_MIB} MiB | "
        f"{'–' if worst_idle is None else f'{worst_idle:.1f} MiB'} | "
        f"{verdict(worst_idle, worst_idle is not None and worst_idle <= RSS_IDLE_MAX_MIB)} |"
    )
    out.append(
        f"| corral master RSS under load ≤ {RSS_LOAD_MAX_MIB} MiB | "
        f"{'–' if worst_end is None else f'{worst_end:.1f} MiB'} | "
        f"{verdict(worst_end, worst_end is not None and worst_end <= RSS_LOAD_MAX_MIB)} |"
    )
    out.append("")
    out += mem
    pairs = [(r["server"], r["workload"]) for r in rows]
    out += commands_section(meta, cmds, pairs)
    return out


def slowloris(meta, cmds, rows, title="slowloris"):
    out = header(meta, title)
    servers = []
    for r in rows:
        if r["server"] not in servers:
            servers.append(r["server"])

    out += ["## Results (hello app)", ""]
    out.append(
        "kept = legit rps under attack ÷ legit rps alone. "
        "corral ÷ server compares the rps under attack."
    )
    out.append("")
    out.append("| server | rps alone | rps under slowloris | kept | p99 alone (ms) | p99 attacked (ms) | errors attacked | corral ÷ server | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    corral_att = ok_rps(find(rows, "hello", "corral", "attacked"))
    kept_corral = None
    for s in servers:
        alone = find(rows, "hello", s, "alone")
        att = find(rows, "hello", s, "attacked")
        if alone is None or att is None:
            continue
        kept = ratio(ok_rps(att), ok_rps(alone))
        if s == "corral":
            kept_corral = kept
        ok = att["status"] == "ok"
        out.append(
            f"| {NAMES.get(s, s)} | {fmt_rps(alone)} | {fmt_rps(att)} "
            f"| {'–' if kept is None else f'{kept:.0%}'} "
            f"| {fmt(alone['p99']) if alone['status'] == 'ok' else '–'} "
            f"| {fmt(att['p99']) if ok else '–'} | {att['errors'] if ok else '–'} "
            f"| {'' if s == 'corral' else fmt_ratio(ratio(corral_att, ok_rps(att)))} | {note_of(att)} |"
        )
    out.append("")

    mem, worst_idle, worst_end = memory_section(rows, lambda r: r["phase"] == "attacked")
    out += ["## Targets", ""]
    out.append("| target | measured | |")
    out.append("|---|---:|---|")
    out.append(
        f"| corral keeps ≥ {SLOWLORIS_KEEP:.0%} of its throughput under slowloris | "
        f"{'–' if kept_corral is None else f'{kept_corral:.0%}'} | "
        f"{verdict(kept_corral, kept_corral is not None and kept_corral >= SLOWLORIS_KEEP)} |"
    )
    out.append(
        f"| corral master RSS under attack ≤ {RSS_LOAD_MAX_MIB} MiB | "
        f"{'–' if worst_end is None else f'{worst_end:.1f} MiB'} | "
        f"{verdict(worst_end, worst_end is not None and worst_end <= RSS_LOAD_MAX_MIB)} |"
    )
    out.append("")
    out += mem
    out += commands_section(meta, cmds, [(s, "hello") for s in servers])
    return out


def asgi(meta, cmds, rows):
    out = header(meta, "ASGI")
    workloads = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])

    out += ["## Results", ""]
    out.append(
        "corral ÷ server: corral's rate divided by that server's on the same workload "
        "(above 1 = corral is faster). The websocket rows count echoed messages per "
        "second over all connections, and their p50/p99 are round-trip times."
    )
    out.append("")
    out.append("| workload | server | rps or msg/s | p50 (ms) | p99 (ms) | errors | corral ÷ server | notes |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for w in workloads:
        corral_rps = ok_rps(find(rows, w, "corral"))
        for r in rows:
            if r["workload"] != w:
                continue
            is_ok = r["status"] == "ok"
            rr = "" if r["server"] == "corral" else fmt_ratio(ratio(corral_rps, ok_rps(r)))
            out.append(
                f"| {ASGI_WORKLOADS.get(w, w)} | {NAMES.get(r['server'], r['server'])} | {fmt_rps(r)} "
                f"| {fmt(r['p50']) if is_ok else '–'} | {fmt(r['p99']) if is_ok else '–'} "
                f"| {r['errors'] if is_ok else '–'} | {rr} | {note_of(r)} |"
            )
    out.append("")

    mem, worst_idle, worst_end = memory_section(rows, lambda r: True)

    out += ["## Targets (2 cores)", ""]
    out.append("| target | measured | |")
    out.append("|---|---:|---|")
    for w, peer, want in ASGI_TARGETS:
        if w not in workloads:
            continue
        r = ratio(ok_rps(find(rows, w, "corral")), ok_rps(find(rows, w, peer)))
        out.append(f"| {w}: corral ≥ {want:g}× {NAMES[peer]} | {fmt_ratio(r)} | {verdict(r, r is not None and r >= want)} |")
    if "websocket" in workloads:
        best, best_rps = None, None
        for r in rows:
            v = num(ok_rps(r)) if r["workload"] == "websocket" and r["server"] != "corral" else None
            if v is not None and (best_rps is None or v > best_rps):
                best, best_rps = r["server"], v
        r = ratio(ok_rps(find(rows, "websocket", "corral")), best_rps)
        label = "the best peer" if best is None else f"the best peer ({NAMES.get(best, best)})"
        out.append(
            f"| websocket: corral ≥ {ASGI_WS_BEST:g}× {label} | {fmt_ratio(r)} "
            f"| {verdict(r, r is not None and r >= ASGI_WS_BEST)} |"
        )
    out.append(
        f"| corral master idle RSS ≤ {RSS_IDLE_MAX_MIB} MiB | "
        f"{'–' if worst_idle is None else f'{worst_idle:.1f} MiB'} | "
        f"{verdict(worst_idle, worst_idle is not None and worst_idle <= RSS_IDLE_MAX_MIB)} |"
    )
    out.append(
        f"| corral master RSS under load ≤ {RSS_LOAD_MAX_MIB} MiB | "
        f"{'–' if worst_end is None else f'{worst_end:.1f} MiB'} | "
        f"{verdict(worst_end, worst_end is not None and worst_end <= RSS_LOAD_MAX_MIB)} |"
    )
    out.append("")
    out.append(
        f"The ASGI slowloris target (corral keeps ≥ {SLOWLORIS_KEEP:.0%} of its clean "
        "hello throughput) is measured by `bench/run asgi-slowloris` and "
        "`bench/run asgi-slowloris-go`: see asgi-slowloris.md and asgi-slowloris-go.md."
    )
    out.append("")
    out += mem
    pairs = [(r["server"], r["workload"]) for r in rows]
    out += commands_section(meta, cmds, pairs)
    return out


def fmt_us(v):
    v = num(v)
    return "–" if v is None else f"{v:,.1f}"


def cpu(meta, cmds, rows):
    out = header(meta, "CPU per request")
    out.append(
        "CPU per request: CPU time (user + system, from /proc/PID/stat, every thread) "
        "spent over exactly the measured wrk run, divided by the requests wrk completed "
        "in it, in microseconds. master = the process the server was started as "
        "(corral's Go master; a peer's supervisor or master process); workers = every "
        "process below it, including any that exited during the run. uWSGI's HTTP "
        "router (`--http`) is a process below its master, so its work is under "
        "workers: compare peers on the total. wrk = the load client's CPU per request. "
        "busy = the whole machine's CPU use over the run; other = the part of it that "
        "was neither the server nor wrk (other work on the machine: above a few % the "
        "run is not clean)."
    )
    out.append("")
    workloads = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    out += ["## Results", ""]
    out.append(
        "corral ÷ server: corral's rps divided by that server's (above 1 = corral is "
        "faster). CPU ÷ corral: that server's total CPU per request divided by "
        "corral's (above 1 = the server spends more per request)."
    )
    out.append("")
    out.append(
        "| workload | server | rps | master µs/req | workers µs/req | total µs/req | wrk µs/req "
        "| p99 (ms) | errors | corral ÷ server | CPU ÷ corral | busy / other | notes |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def total(row):
        if row is None or row["status"] != "ok":
            return None
        m, w = num(row["master_us"]), num(row["workers_us"])
        return None if m is None or w is None else m + w

    for w in workloads:
        c = find(rows, w, "corral")
        corral_rps, corral_total = ok_rps(c), total(c)
        for r in rows:
            if r["workload"] != w:
                continue
            ok = r["status"] == "ok"
            t = total(r)
            is_corral = r["server"] == "corral"
            rr = "" if is_corral else fmt_ratio(ratio(corral_rps, ok_rps(r)))
            cr = "" if is_corral else fmt_ratio(ratio(t, corral_total))
            busy = f"{r['busy']}% / {r['other']}%" if ok and num(r["busy"]) is not None else "–"
            out.append(
                f"| {CPU_WORKLOADS.get(w, w)} | {NAMES.get(r['server'], r['server'])} | {fmt_rps(r)} "
                f"| {fmt_us(r['master_us']) if ok else '–'} | {fmt_us(r['workers_us']) if ok else '–'} "
                f"| {fmt_us(t)} | {fmt_us(r['client_us']) if ok else '–'} "
                f"| {fmt(r['p99']) if ok else '–'} | {r['errors'] if ok else '–'} | {rr} | {cr} | {busy} | {note_of(r)} |"
            )
    out.append("")
    out += ["## Targets (issue 12, 2 cores)", ""]
    out.append("| target | measured | |")
    out.append("|---|---:|---|")
    for w, limit in CPU_MASTER_MAX_US.items():
        if w not in workloads:
            continue
        r = find(rows, w, "corral")
        v = num(r["master_us"]) if r is not None and r["status"] == "ok" else None
        out.append(
            f"| {CPU_WORKLOADS[w]}: corral master CPU ≤ {limit} µs per request | "
            f"{'–' if v is None else f'{v:.1f} µs'} | {verdict(v, v is not None and v <= limit)} |"
        )
    out.append("")
    pairs = [(r["server"], r["workload"]) for r in rows]
    out += commands_section(meta, cmds, pairs)
    return out


def memory(meta, cmds, rows):
    out = [f"# corral benchmark: master memory with many connections", ""]
    out.append(f"- date: {meta.get('date', '?')}")
    out.append(f"- command: `{meta.get('command', '?')}`")
    out.append(f"- connections: `{meta.get('connhold', '?')}`")
    out.append(f"- overload: `{meta.get('wrk', '?')}`")
    out.append(f"- machine: {meta.get('machine', '?')}")
    if "load" in meta:
        out.append(f"- machine load: {meta['load']}")
    out.append(f"- corral: {meta.get('corral', '?')}")
    out.append(f"- {meta.get('python', '?')}; {meta.get('go', '?')}")
    out.append("")
    out.append(
        "VmRSS of corral's master process only (not its Python workers), from "
        "/proc/PID/status: before = idle, after one answered request; with = while the "
        "connections are open; peak = VmHWM at that point. per connection = (with − "
        "before) ÷ connections open. idle: each connection sent one request, read its "
        "answer and stays open (keep-alive). queued: each connection sent one request "
        "to a route that sleeps 600 s; 2 workers take 2 of them, the rest wait in "
        "corral's queue. overload: wrk against a route far over capacity, with corral's "
        "default queue limits, so most requests get a fast 503."
    )
    out.append("")
    out += ["## Results", ""]
    out.append("| held as | connections | open | answered | before | with | per connection | peak | notes |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    per_conn_10k = peak_overload = None
    for r in rows:
        ok = r["status"] == "ok"
        before, with_, peak = mib(r["rss_before"]), mib(r["rss_with"]), mib(r["rss_peak"])
        opened = num(r["open"])
        per = None
        if ok and before is not None and with_ is not None and opened:
            per = (with_ - before) * 1024 / opened
        if r["mode"] != "overload" and num(r["connections"]) == 10000 and per is not None:
            per_conn_10k = per if per_conn_10k is None else max(per_conn_10k, per)
        if r["mode"] == "overload" and peak is not None:
            peak_overload = peak
        answered = r["answered"]
        if r["statuses"] not in ("-", ""):
            answered += f" ({r['statuses']})"
        out.append(
            f"| {r['mode']} | {num(r['connections']):,.0f} | {r['open'] if ok else '–'} | {answered if ok else '–'} "
            f"| {fmt_mib(r['rss_before']) if ok else '–'} | {fmt_mib(r['rss_with']) if ok else '–'} "
            f"| {'–' if per is None else f'{per:.1f} KiB'} | {fmt_mib(r['rss_peak']) if ok else '–'} "
            f"| {r['note'] if r['note'] != '-' else ''} |"
        )
    out.append("")
    out += ["## Targets (issue 12)", ""]
    out.append("| target | measured | |")
    out.append("|---|---:|---|")
    out.append(
        f"| master RSS with 10,000 open connections ≤ {MEMORY_PER_CONN_MAX_KIB} KiB per connection "
        f"(the worse of idle and queued) | {'–' if per_conn_10k is None else f'{per_conn_10k:.1f} KiB'} "
        f"| {verdict(per_conn_10k, per_conn_10k is not None and per_conn_10k <= MEMORY_PER_CONN_MAX_KIB)} |"
    )
    out.append(
        f"| master peak RSS under a 2,000-connection overload ≤ {MEMORY_OVERLOAD_MAX_MIB} MiB "
        f"| {'–' if peak_overload is None else f'{peak_overload:.1f} MiB'} "
        f"| {verdict(peak_overload, peak_overload is not None and peak_overload <= MEMORY_OVERLOAD_MAX_MIB)} |"
    )
    out.append("")
    out += commands_section(meta, cmds, [("corral", r["mode"]) for r in rows])
    return out


def main():
    scenario = ""
    with open(sys.argv[1]) as f:
        for line in f:
            if line.startswith("scenario\t"):
                scenario = line.rstrip("\n").split("\t")[1]
    if scenario == "memory":
        meta, cmds, rows = load(sys.argv[1], sys.argv[2], MEMORY_FIELDS)
        print("\n".join(memory(meta, cmds, rows)))
        return
    meta, cmds, rows = load(sys.argv[1], sys.argv[2])
    if scenario == "cpu":
        lines = cpu(meta, cmds, rows)
    elif scenario == "asgi":
        lines = asgi(meta, cmds, rows)
    elif scenario.startswith("asgi-slowloris"):
        lines = slowloris(meta, cmds, rows, "ASGI slowloris (raw ASGI hello)")
    elif scenario.startswith("slowloris"):
        lines = slowloris(meta, cmds, rows)
    else:
        lines = throughput(meta, cmds, rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
