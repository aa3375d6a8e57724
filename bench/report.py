"""Turn one bench/run scenario's raw rows into the markdown report.

Usage: python report.py WORK/<scenario>.meta WORK/<scenario>.tsv > results/<scenario>.md

Called by bench/run; standard library only. The .meta file holds tab-separated
key/value lines (plus "cmd SERVER WORKLOAD COMMAND" lines), the .tsv one row
per measurement:

    workload server phase status rps p50_ms p99_ms errors rss_idle_kib rss_end_kib rss_peak_kib note

status is ok, missing (not built / not applicable) or failed (did not start);
"-" marks an empty field.
"""

import sys

NAMES = {
    "corral": "corral",
    "gunicorn-sync": "gunicorn sync",
    "gunicorn-gthread": "gunicorn gthread (4 threads)",
    "gunicorn-gevent": "gunicorn gevent",
    "uwsgi": "uWSGI",
    "waitress": "Waitress",
    "granian": "Granian",
    "go-ceiling": "Go net/http (ceiling)",
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

FIELDS = "workload server phase status rps p50 p99 errors rss_idle rss_end rss_peak note".split()


def load(meta_path, tsv_path):
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
            parts += ["-"] * (len(FIELDS) - len(parts))
            rows.append(dict(zip(FIELDS, parts)))
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
        r = ratio(ok_rps(find(rows, w, "corral")), ok_rps(find(rows, w, peer)))
        out.append(f"| {w}: corral ≥ {want:g}× {NAMES[peer]} | {fmt_ratio(r)} | {verdict(r, r is not None and r >= want)} |")
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
        "hello throughput) is measured by `bench/run asgi-slowloris`: see asgi-slowloris.md."
    )
    out.append("")
    out += mem
    pairs = [(r["server"], r["workload"]) for r in rows]
    out += commands_section(meta, cmds, pairs)
    return out


def main():
    meta, cmds, rows = load(sys.argv[1], sys.argv[2])
    scenario = meta.get("scenario", "")
    if scenario == "asgi":
        lines = asgi(meta, cmds, rows)
    elif scenario == "asgi-slowloris":
        lines = slowloris(meta, cmds, rows, "ASGI slowloris (raw ASGI hello)")
    elif scenario.startswith("slowloris"):
        lines = slowloris(meta, cmds, rows)
    else:
        lines = throughput(meta, cmds, rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
