"""CPU time and memory of one server's process tree, from /proc.

Usage: python3 proctree.py PID

Prints one line of space-separated key=value pairs for bench/run:

    master_ticks=1234 workers_ticks=5678 procs=3 master_rss_kib=14336 tree_rss_kib=90112 hz=100

- master_ticks: utime + stime of PID itself (every thread, live or
  finished, as /proc/PID/stat sums them), in clock ticks (hz per second).
- workers_ticks: utime + stime of every process below PID (children,
  grandchildren: found by walking /proc for parent ids, so a server that
  moves its workers to another process group is still covered), plus the
  cutime + cstime of PID and of each of them: the CPU time of descendants
  that exited and were reaped, so a worker replaced between two samples
  still counts.
- procs: PID plus its live descendants.
- master_rss_kib, tree_rss_kib: VmRSS of PID, and summed over the tree.

Sample before and after a measured run; the differences over the number of
requests are the CPU cost per request. Standard library only.
"""

import os
import sys


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or ")".
    return data[data.rindex(b")") + 2 :].split()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    root = int(sys.argv[1])
    children = {}
    times = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = stat_fields(name)
        if f is None:
            continue
        pid = int(name)
        # After the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 1-based.
        ppid = int(f[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = (int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    if root not in times:
        print("error=gone")
        return
    tree, frontier = [root], [root]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, [])]
        tree += frontier
    master = times[root][0]
    workers = sum(times[p][0] for p in tree[1:]) + sum(times[p][1] for p in tree)
    rss = [rss_kib(p) for p in tree]
    print(
        f"master_ticks={master} workers_ticks={workers} procs={len(tree)} "
        f"master_rss_kib={rss[0]} tree_rss_kib={sum(rss)} hz={os.sysconf('SC_CLK_TCK')}"
    )


if __name__ == "__main__":
    main()
