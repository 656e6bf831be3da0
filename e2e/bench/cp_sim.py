#!/usr/bin/env python3
"""Where one control plane saturates: `node-sim` (N simulated data planes,
each with its snapshot stream and its trace stream) against a release
control plane on SQLite and on Postgres. Prints markdown tables for
docs/scaling.md.

    cargo build --release -p control-plane -p aigw-e2e --bin control-plane --bin node-sim --bin mock-provider
    AIGW_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \\
      e2e/.venv/bin/python e2e/bench/cp_sim.py [--rates 2000,5000,...] [--step-secs 8]

A benchmark: run it on a quiet machine, never while something builds.
Everything is on loopback and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("AIGW_BIN_DIR", str(ROOT / "target" / "release"))
sys.path.insert(0, str(ROOT / "e2e" / "tests"))

import httpx  # noqa: E402

from harness import Database, binary, clean_env, gateway_config, postgres_database, start_gateway  # noqa: E402


def metric_sum(text: str, name: str) -> float:
    return sum(float(m) for m in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def run_backend(kind: str, args: argparse.Namespace, work: Path) -> tuple[list[dict], list[tuple[int, float]]]:
    drop = None
    if kind == "sqlite":
        path = work / kind / "aigw.db"
        db = Database("sqlite", f"sqlite://{path}", sqlite_path=path)
    else:
        url, drop = postgres_database(os.environ["AIGW_TEST_PG_URL"])
        db = Database("postgres", url)
    gw = start_gateway(work / kind, db)
    try:
        gw.stop_control_plane()
        gw.cp_env["AIGW_METRICS_LISTEN"] = "127.0.0.1:0"
        gw.start_control_plane()
        metrics = "http://" + gw.cp.wait_line(re.compile(r"^control-plane metrics on (\S+)$")).group(1) + "/metrics"
        gw.apply_ok(gateway_config(gw.mock.url))
        env = clean_env({"AIGW_CONTROL_PLANE": gw.cp_url, "AIGW_NODE_TOKEN": gw.node_token, "RUST_LOG": "warn"})
        p = subprocess.run([str(binary("node-sim")), "--nodes", str(args.nodes), "--rates", args.rates,
                            "--step-secs", str(args.step_secs), "--drain-secs", "120"],
                           env=env, capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"node-sim failed: {p.stderr}")
        steps = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        summary = steps.pop()["summary"]
        assert summary["stored"] + summary["duplicates"] == summary["acked"], summary
        # Fan-out: one change, acknowledged by every node.
        fanout = []
        for n in args.fanout_nodes:
            sim = subprocess.Popen([str(binary("node-sim")), "--nodes", str(n), "--rates", "0",
                                    "--step-secs", "600", "--drain-secs", "0"],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 120
                while metric_sum(httpx.get(metrics, timeout=5).text, "aigw_nodes_current") < n:
                    assert time.monotonic() < deadline, "nodes did not connect"
                    time.sleep(0.05)
                cfg = gateway_config(gw.mock.url, client_keys=[{"name": "app", "key": "${E2E_APP_KEY}"},
                                                               {"name": f"fanout-{n}"}])
                t0 = time.monotonic()
                gw.apply_ok(cfg)
                while metric_sum(httpx.get(metrics, timeout=5).text, "aigw_nodes_current") < n:
                    assert time.monotonic() < deadline, "the change did not reach every node"
                    time.sleep(0.01)
                fanout.append((n, (time.monotonic() - t0) * 1000))
            finally:
                sim.kill()
                sim.wait()
            time.sleep(1)
        return steps, fanout
    finally:
        gw.stop_all()
        if drop:
            drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000")
    ap.add_argument("--step-secs", type=float, default=8.0)
    ap.add_argument("--fanout-nodes", type=lambda s: [int(x) for x in s.split(",")], default=[20, 200])
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="aigw-cp-sim-") as tmp:
        for kind in args.backends.split(","):
            steps, fanout = run_backend(kind, args, Path(tmp))
            print(f"\n### {kind}: {args.nodes} nodes, {args.step_secs:g} s per step\n")
            print("| offered traces/s | sent/s | acked (stored) /s | ack p50 | ack p99 | batches held back |")
            print("|---|---|---|---|---|---|")
            for s in steps:
                print(f"| {s['offered_per_s']} | {s['sent_per_s']:.0f} | {s['acked_per_s']:.0f} | "
                      f"{s['ack_p50_ms']:.1f} ms | {s['ack_p99_ms']:.1f} ms | {s['deferred_batches']} |")
            print("\n| nodes | one change acknowledged by all |\n|---|---|")
            for n, ms in fanout:
                print(f"| {n} | {ms:.0f} ms |")


if __name__ == "__main__":
    main()
