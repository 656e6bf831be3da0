"""Twenty simulated data planes (`node-sim`) on one control plane: each
subscribes to snapshots and reports traces over its own stream, as a data
plane does. Every trace sent is stored exactly once, and a configuration
change reaches all twenty. (The saturation sweep behind docs/scaling.md is
the same program with higher rates, run by hand.)"""

from __future__ import annotations

import json
import re
import subprocess
import threading

import httpx

from harness import Gateway, binary, clean_env, eventually, gateway_config

NODES = 20


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_twenty_nodes_report_to_one_control_plane(stack: Gateway) -> None:
    stack.stop_control_plane()
    stack.cp_env["AIGW_METRICS_LISTEN"] = "127.0.0.1:0"
    stack.start_control_plane()
    assert stack.cp is not None
    metrics_url = "http://" + stack.cp.wait_line(
        re.compile(r"^control-plane metrics on (\S+)$")).group(1) + "/metrics"
    stack.apply_ok(gateway_config(stack.mock.url))

    sim = subprocess.Popen(
        [str(binary("node-sim")), "--nodes", str(NODES), "--rates", "1000,2000",
         "--step-secs", "3", "--drain-secs", "60"],
        env=clean_env({"AIGW_CONTROL_PLANE": stack.cp_url, "AIGW_NODE_TOKEN": stack.node_token}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    out: dict[str, str] = {}
    reader = threading.Thread(target=lambda: out.update(zip(("stdout", "stderr"), sim.communicate(timeout=120))))
    reader.start()
    try:
        def all_connected() -> None:
            text = httpx.get(metrics_url, timeout=5).text
            for region in ("sim-a", "sim-b"):
                assert metric(text, f'aigw_nodes_connected{{region="{region}"}}') == NODES / 2, region
        eventually(all_connected, what="20 simulated nodes connected")

        # A change while they report reaches all twenty.
        cfg = gateway_config(stack.mock.url, client_keys=[{"name": "app", "key": "${E2E_APP_KEY}"},
                                                          {"name": "fan-out"}])
        stack.apply_ok(cfg)

        def all_current() -> None:
            text = httpx.get(metrics_url, timeout=5).text
            for region in ("sim-a", "sim-b"):
                assert metric(text, f'aigw_nodes_current{{region="{region}"}}') == NODES / 2, region
        eventually(all_current, what="the change acknowledged by all 20 nodes")
    finally:
        reader.join(150)
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, out.get("stderr")
    lines = [json.loads(line) for line in out["stdout"].splitlines() if line.strip()]
    steps, [summary] = lines[:-1], [line["summary"] for line in lines[-1:]]
    assert len(steps) == 2
    assert summary["sent"] > 0 and summary["acked"] == summary["sent"], summary
    assert summary["stored"] == summary["sent"] and summary["duplicates"] == 0, summary
    # The database holds exactly what was sent.
    [row] = stack.db.rows("SELECT COUNT(*) AS n FROM traces WHERE request_id LIKE ? ESCAPE '\\'",
                          (f"sim\\_{summary['run_id']}\\_%",))
    assert int(row["n"]) == summary["sent"]
    text = httpx.get(metrics_url, timeout=5).text
    assert metric(text, "aigw_trace_ingest_stored_total") == summary["sent"]
