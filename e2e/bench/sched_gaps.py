"""Reads `perf sched script` output and prints the stalls of a one-connection
request chain: moments longer than 1 ms when no thread of the chain (wrk,
the data plane's `serve-*` threads, the mock's threads) was switched in or
out, with the CPU time each other thread (and each idle core) had during
them. Used by tail.sh."""

from __future__ import annotations

import argparse
import collections
import re

SWITCH = re.compile(
    r"\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.*?) prev_pid=(\d+) .*?"
    r"prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--dp", default="")
    ap.add_argument("--cp", default="")
    ap.add_argument("--mock", default="")
    ap.add_argument("--gap-ms", type=float, default=1.0)
    a = ap.parse_args()
    dp, cp, mock = (set(filter(None, x.split(","))) for x in (a.dp, a.cp, a.mock))
    events = []
    with open(a.script) as f:
        for line in f:
            m = SWITCH.search(line)
            if m:
                events.append((float(m.group(2)), int(m.group(1)), m.group(4), m.group(3),
                               m.group(7), m.group(6)))
    if not events:
        raise SystemExit("no sched_switch events")
    names: dict[str, str] = {}
    for _, _, prev, prev_comm, nxt, next_comm in events:
        names[prev], names[nxt] = prev_comm, next_comm
    chain = {p for p, n in names.items() if n.startswith("serve-") or n == "wrk"} | mock
    runs, current = [], {}
    for t, cpu, _, _, nxt, next_comm in events:
        if cpu in current:
            runs.append((*current[cpu], t))
        current[cpu] = (t, nxt, next_comm)
    gaps, last = [], None
    for t, _, prev, _, nxt, _ in events:
        if prev in chain or nxt in chain:
            if last is not None and t - last > a.gap_ms / 1000:
                gaps.append((last, t))
            last = t
    held: collections.Counter[str] = collections.Counter()
    for start, end in gaps:
        for s, pid, comm, e in runs:
            overlap = min(e, end) - max(s, start)
            if overlap > 0:
                who = "data plane " if pid in dp else "control plane " if pid in cp else ""
                held[f"{who}{comm} ({pid})" if pid != "0" else f"idle core ({comm})"] += overlap
    span = events[-1][0] - events[0][0]
    print(f"{len(gaps)} stalls over {a.gap_ms:g} ms in {span:.1f} s, "
          f"{sum(e - s for s, e in gaps) * 1000:.0f} ms in all; the cores meanwhile:")
    for who, secs in held.most_common(12):
        print(f"  {secs * 1000:7.1f} ms  {who}")


if __name__ == "__main__":
    main()
