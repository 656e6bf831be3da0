"""Configuration at scale, with the real binaries: a file of many client
keys applied as one transaction and one snapshot version that both data
planes acknowledge; then one key created and one revoked, each reaching
both data planes as a delta (their `aigw_snapshot_deltas_total` counts it)
and served or refused accordingly; then a data plane restarted with the
control plane down serves the whole state from its disk copy.

The size is `AIGW_E2E_SCALE_KEYS` (20,000 by default: the debug binaries
take a few seconds for it); the benchmark (e2e/bench/scale.sh) runs 100,000
on release binaries and measures the time."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import grpc
import httpx
import pytest

from admin_client import Api
from harness import MODEL, Gateway, eventually, gateway_config

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

KEYS = int(os.environ.get("AIGW_E2E_SCALE_KEYS", "20000"))
PUBLISHED = re.compile(r"published snapshot")
# A data plane ending its subscription itself: after a large whole snapshot
# it resubscribes, so that the stream's buffer of that size is freed.
CLOSED_BY_NODE = re.compile(r"data plane disconnected.*closed by node")


def scale_key(i: int) -> str:
    return f"sk-aigw-scale-{i:07d}-0123456789"


def big_file(mock_url: str, n: int) -> str:
    """The test's gateway config with `n` client keys, as YAML text (written
    directly: a YAML library takes longer than the apply itself)."""
    import yaml

    base = gateway_config(mock_url)
    head = yaml.safe_dump({k: v for k, v in base.items() if k != "client_keys"}, sort_keys=False)
    lines = [head, "client_keys:\n", "  - name: app\n    key: ${E2E_APP_KEY}\n"]
    for i in range(n):
        limits = "\n    limits: { rpm: 600 }" if i % 4 == 0 else ""
        lines.append(f"  - name: scale-{i:07d}\n    key: {scale_key(i)}{limits}\n")
    return "".join(lines)


def metric(url: str, name: str) -> float:
    """A counter's value on a data plane's /metrics (0 before its first
    increment)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def models_status(url: str, key: str) -> int:
    return httpx.get(url + "/v1/models", headers={"authorization": f"Bearer {key}"},
                     timeout=10).status_code


def assert_status(url: str, key: str, want: int) -> None:
    got = models_status(url, key)
    assert got == want, f"{url}: GET /v1/models with {key[:22]}… gave {got}, expected {want}"


def published(gw: Gateway) -> int:
    """How many versions the control plane has published (its log)."""
    assert gw.cp is not None
    return len(PUBLISHED.findall(gw.cp.log_path.read_text("utf-8", "replace")))


def closed_by_node(gw: Gateway) -> int:
    assert gw.cp is not None
    return len(CLOSED_BY_NODE.findall(gw.cp.log_path.read_text("utf-8", "replace")))


def test_a_large_apply_is_one_version_and_single_keys_move_as_deltas(
        stack: Gateway, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    root = Api(pb, channel, stack.admin_token)
    stack.apply_ok(gateway_config(stack.mock.url))
    stack.start_data_plane()
    stack.wait_key_known()
    dp2, dp2_url = stack.extra_data_plane("e2e-dp-2")
    planes = [stack.dp_url, dp2_url]
    eventually(lambda: assert_status(dp2_url, stack.app_key, 200), what="second data plane ready")

    # The big file: one transaction, one new version, acked by both planes.
    before = published(stack)
    resubscribed = closed_by_node(stack)
    applied_before = [metric(u, "aigw_snapshot_applied_total") for u in planes]
    r = stack.apply_ok(big_file(stack.mock.url, KEYS))
    assert len(r.lines) == KEYS + 3, r.lines[:5]
    assert sum(line.startswith("created client_key scale-") for line in r.lines) == KEYS
    assert "unchanged client_key app" in r.lines
    [row] = stack.db.rows("SELECT COUNT(*) AS n FROM client_keys")
    assert row["n"] == KEYS + 1

    def acked() -> str:
        nodes = root.call(root.admin.ListNodes, pb.admin_pb2.ListRequest())
        live = [n for n in nodes.nodes if n.connected]
        assert len(live) == 2 and all(n.applied_version == nodes.current_version for n in live), nodes
        return nodes.current_version

    version = eventually(acked, what="both data planes acknowledged the new version")
    assert published(stack) == before + 1
    # Each plane applied exactly one snapshot for it, then resubscribed
    # (the snapshot is over 1 MiB) and was sent nothing again.
    for url, was in zip(planes, applied_before):
        assert metric(url, "aigw_snapshot_applied_total") == was + 1
    if KEYS >= 15_000:
        def both_resubscribed() -> None:
            assert closed_by_node(stack) >= resubscribed + 2, stack.cp.log_tail()  # type: ignore[union-attr]

        eventually(both_resubscribed, what="both data planes resubscribed after the large snapshot")
        eventually(acked, what="both data planes connected again on the new version")
        for url, was in zip(planes, applied_before):
            assert metric(url, "aigw_snapshot_applied_total") == was + 1

    for i in (0, 1, KEYS // 2, KEYS - 1):
        for url in planes:
            assert_status(url, scale_key(i), 200)
    assert_status(stack.dp_url, scale_key(KEYS), 401)
    resp = stack.client(api_key=scale_key(KEYS // 3)).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == "mock reply: hi"

    # One key created through the Admin API: a delta to each plane.
    deltas = [metric(u, "aigw_snapshot_deltas_total") for u in planes]
    new_key = "sk-aigw-scale-created-after-0123456789"
    root.call(root.admin.UpsertClientKey, pb.admin_pb2.ClientKeySpec(name="late", key=new_key))
    for url, was in zip(planes, deltas):
        eventually(lambda: assert_status(url, new_key, 200), what=f"new key served by {url}")
        assert metric(url, "aigw_snapshot_deltas_total") == was + 1
    # One key revoked: a delta too, refused everywhere.
    revoked = scale_key(7)
    root.call(root.admin.RevokeClientKey, pb.admin_pb2.NameRequest(name="scale-0000007"))
    for url, was in zip(planes, deltas):
        eventually(lambda: assert_status(url, revoked, 401), what=f"revoked key refused by {url}")
        assert metric(url, "aigw_snapshot_deltas_total") == was + 2
        assert_status(url, scale_key(8), 200)
    assert published(stack) == before + 3
    assert acked() != version

    # Applied again, the file changes nothing and publishes nothing.
    again = stack.apply_ok(big_file(stack.mock.url, KEYS).replace(
        f"  - name: scale-0000007\n    key: {revoked}\n", ""))
    assert again.lines and all(line.startswith("unchanged ") for line in again.lines), again.lines[:5]
    assert published(stack) == before + 3

    # A data plane restarted with the control plane down serves the state
    # the deltas made, from its disk copy.
    stack.dp.stop()  # type: ignore[union-attr]
    stack.stop_control_plane()
    stack.start_data_plane()
    assert_status(stack.dp_url, new_key, 200)
    assert_status(stack.dp_url, revoked, 401)
    for i in (0, KEYS // 2, KEYS - 1):
        assert_status(stack.dp_url, scale_key(i), 200)
    assert_status(stack.dp_url, stack.app_key, 200)
    dp2.stop()
