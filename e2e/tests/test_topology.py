"""docker-compose.yml's two-region topology, run in network namespaces
(`deploy/topology.py`), broken four ways. For each fault: apps in the
surviving or cut-off region keep being served from the snapshot they hold,
every answered request has exactly one trace once the links are back (the
trace count is exact), configuration changed meanwhile reaches every data
plane when it can (snapshot versions compared with the control plane's),
and quotas follow their documented policy (shared through the region's
Redis; while it is down, counted in process per data plane, or refused for
budgets with `when_store_down: refuse`).

One topology serves the module (Postgres, the control plane with mTLS,
admin-web, a Redis and two data planes per region, the mock provider as
the upstream); each test leaves it whole for the next. Needs root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from harness import BIN_DIR, LOG_SOURCES, MODEL, POOL_SECRET, REPO, Expected, binary, clean_env, eventually, gateway_config

sys.path.insert(0, str(REPO / "deploy"))
import topology  # noqa: E402
from prom import check_with_promtool, promtool  # noqa: E402

MESSAGES = [{"role": "user", "content": "Which region answers?"}]
EXPECTED = Expected.for_messages(MESSAGES)
EU = ("data-plane-eu-1", "data-plane-eu-2")
US = ("data-plane-us-1", "data-plane-us-2")
DATA_PLANES = EU + US
# The region cut lasts this long (the 30 s: longer than the gRPC
# keep-alive takes to notice, so the streams really break).
CUT_SECS = 30.0


def _require_root() -> None:
    missing = [c for c in ("ip", "redis-server", "runuser") if shutil.which(c) is None]
    why = None
    if os.geteuid() != 0:
        why = "needs root (network namespaces)"
    elif missing:
        why = f"needs {missing}"
    elif not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        why = "needs postgresql"
    if why:
        if os.environ.get("AIGW_TEST_REQUIRE_NETNS") == "1":
            pytest.fail(f"topology tests {why} but AIGW_TEST_REQUIRE_NETNS=1")
        pytest.skip(f"topology tests {why}")


@dataclass
class Net:
    """The running topology as the tests reach it (through 127.0.0.1 forwarders)."""

    t: topology.Topology
    urls: dict[str, str]
    cp_addr: str
    cp_metrics: str
    pg_addr: str
    mock: httpx.Client
    keys: dict[str, str]
    # Every authenticated call's (request id, status): each must have one trace.
    calls: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- configuration

    def config(self, extra_keys: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        keys = [{"name": "app", "key": self.keys["app"]}]
        for name, limits in (extra_keys or {}).items():
            self.keys.setdefault(name, f"sk-aigw-topo-{name}-" + os.urandom(8).hex())
            keys.append({"name": name, "key": self.keys[name], **({"limits": limits} if limits else {})})
        return gateway_config("http://mock-provider:8000", client_keys=keys)

    def apply_run(self, cfg: dict[str, Any], client_cert: bool = True) -> subprocess.CompletedProcess[str]:
        """`control-plane apply` from the host, over the published port (mTLS)."""
        path = self.t.dir / f"apply-{os.urandom(4).hex()}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        certs = self.t.dirs["certs"]
        env = clean_env({
            "AIGW_CONTROL_PLANE": f"https://localhost:{self.cp_addr.rsplit(':', 1)[1]}",
            "AIGW_ADMIN_TOKEN": self.t.secrets["AIGW_ADMIN_TOKEN"],
            "AIGW_CA_FILE": str(certs / "ca.pem"),
            "E2E_POOL_SECRET": POOL_SECRET,
        })
        if client_cert:
            env["AIGW_TLS_CLIENT_CERT"] = str(certs / "admin-web.pem")
            env["AIGW_TLS_CLIENT_KEY"] = str(certs / "admin-web.key")
        # Longer than apply's own bounds (10 s to connect, 60 s per call), so a
        # refused or stalled apply ends by itself, non-zero, on a busy machine.
        return subprocess.run([str(binary("control-plane")), "apply", "-f", str(path)], env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    def apply(self, cfg: dict[str, Any]) -> None:
        p = self.apply_run(cfg)
        assert p.returncode == 0, f"apply failed:\n{p.stdout}\n{p.stderr}"

    # -- what the processes say

    def cp_version(self) -> str:
        text = httpx.get(self.cp_metrics, timeout=5).text
        m = re.search(r'^aigw_snapshot_info\{version="([0-9a-f]+)"\} 1$', text, re.M)
        assert m, text
        return m.group(1)

    def version(self, dp: str) -> str:
        r = httpx.get(self.urls[dp] + "/readyz", timeout=5)
        assert r.status_code == 200, f"{dp} /readyz {r.status_code}"
        return r.text.split()[1]

    def wait_versions(self, dps: tuple[str, ...], version: str, timeout: float = 60) -> None:
        def there() -> None:
            got = {dp: self.version(dp) for dp in dps}
            assert set(got.values()) == {version}, got
        eventually(there, timeout=timeout, what=f"{dps} at snapshot {version[:12]}")

    def metric(self, dp: str, name: str) -> float:
        text = httpx.get(self.urls[dp] + "/metrics", timeout=5).text
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert m, f"{name} not in {dp}'s /metrics"
        return float(m.group(1))

    # -- calls

    def call(self, dp: str, key: str = "app", stream: bool = False) -> httpx.Response:
        """One chat call to `dp`; an answered one is checked and remembered."""
        body: dict[str, Any] = {"model": MODEL, "messages": MESSAGES}
        if stream:
            body["stream"] = True
        r = httpx.post(self.urls[dp] + "/v1/chat/completions", json=body, timeout=30,
                       headers={"authorization": f"Bearer {self.keys[key]}"})
        rid = r.headers.get("x-request-id")
        assert rid, r.headers
        if r.status_code != 401:  # refused before it was a request of a key
            with self.lock:
                self.calls.append((rid, r.status_code))
        if r.status_code == 200:
            if stream:
                assert EXPECTED.reply.split()[-1] in r.text and "[DONE]" in r.text, r.text[-300:]
            else:
                assert r.json()["choices"][0]["message"]["content"] == EXPECTED.reply
        return r

    def serve_ok(self, dp: str, **kw: Any) -> str:
        r = self.call(dp, **kw)
        assert r.status_code == 200, f"{dp}: {r.status_code} {r.text[:300]}"
        return r.headers["x-request-id"]

    # -- traces

    def traces(self) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        url = (f"postgres://aigw:{self.t.secrets['POSTGRES_PASSWORD']}@{self.pg_addr}/aigw")
        with psycopg.connect(url, autocommit=True, row_factory=dict_row, connect_timeout=5) as c:
            return list(c.execute(
                "SELECT request_id, node_id, region, status, error, output_tokens FROM traces").fetchall())

    def assert_traces_exact(self, timeout: float = 90) -> list[dict[str, Any]]:
        """Every answered call has its trace, once; no other trace exists."""
        with self.lock:
            expected = {rid: status for rid, status in self.calls}
        assert len(expected) == len(self.calls), "a request id was answered twice"

        def exact() -> list[dict[str, Any]]:
            rows = self.traces()
            ids = [r["request_id"] for r in rows]
            assert len(ids) == len(set(ids)), "a trace is stored twice"
            missing = set(expected) - set(ids)
            assert not missing, f"{len(missing)} answered calls have no trace yet"
            assert set(ids) == set(expected), f"traces of calls never answered: {set(ids) - set(expected)}"
            return rows

        rows = eventually(exact, timeout=timeout, what="every answered call traced exactly once")
        for r in rows:
            assert r["status"] == expected[r["request_id"]], r
            assert r["node_id"].startswith("dp-") and r["region"] in ("eu", "us"), r
        return rows


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    _require_root()
    for b in ("control-plane", "data-plane", "admin-web", "mock-provider"):
        binary(b)
    d = Path(tempfile.mkdtemp(prefix="aigw-topo-", dir="/tmp"))
    t = topology.Topology(d, bin_dir=BIN_DIR)
    try:
        t.up()
        mock = httpx.Client(base_url="http://" + t.publish(topology.MOCK), timeout=10)
        n = Net(
            t=t,
            urls={dp: "http://" + t.publish(dp) for dp in DATA_PLANES},
            cp_addr=t.publish("control-plane"),
            cp_metrics="http://" + t.publish("control-plane", 9464) + "/metrics",
            pg_addr=t.publish("postgres"),
            mock=mock,
            keys={"app": "sk-aigw-topo-app-" + os.urandom(8).hex()},
        )
        LOG_SOURCES.append(lambda: [(f"{s} log", t.tail(s, 40)) for s in t.services])
        n.apply(n.config())
        v = n.cp_version()
        n.wait_versions(DATA_PLANES, v)
        yield n
        mock.close()
    except BaseException:
        for name in t.services:
            sys.stderr.write(f"--- {name}\n{t.tail(name, 30)}\n")
        raise
    finally:
        LOG_SOURCES.clear()
        t.down()
    assert not Path(f"/run/netns/{t.ns('eu')}").exists(), "namespace left behind"


def test_the_compose_topology_serves_every_region(net: Net) -> None:
    v = net.cp_version()
    # Every compose service runs in its region, on TLS between the planes.
    for name, region, _addr, alive in net.t.status():
        assert alive, f"{name} ({region}) is not running"
    for dp in DATA_PLANES:
        net.serve_ok(dp)
        net.serve_ok(dp, stream=True)
        assert net.metric(dp, "aigw_control_plane_connected") == 1
    # The planes' gRPC is mTLS only: a client without a certificate is refused.
    p = net.apply_run(net.config({"no-cert": {}}), client_cert=False)
    assert p.returncode != 0, p.stdout
    assert net.cp_version() == v
    # Each region's data planes use their own Redis.
    assert net.metric("data-plane-eu-1", "aigw_ratelimit_store_degraded") == 0
    net.assert_traces_exact()


def test_a_data_plane_killed_mid_stream(net: Net) -> None:
    victim, peer = EU
    before = [net.serve_ok(victim, stream=s) for s in (False, True, False)]
    assert before
    # A slow stream on the victim, killed while its answer is being read.
    net.mock.post("/_mock/faults", json={"chunk_delay_ms": 400, "times": 1}).raise_for_status()
    got_head = threading.Event()
    outcome: dict[str, Any] = {}

    def slow_stream() -> None:
        try:
            with httpx.stream("POST", net.urls[victim] + "/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {net.keys['app']}"},
                              json={"model": MODEL, "messages": MESSAGES, "stream": True}) as r:
                outcome["id"] = r.headers.get("x-request-id")
                got_head.set()
                outcome["body"] = b"".join(r.iter_bytes())
        except httpx.HTTPError as e:
            outcome["error"] = e
        finally:
            got_head.set()

    th = threading.Thread(target=slow_stream)
    th.start()
    assert got_head.wait(20), "no stream head"
    net.t.kill(victim)
    th.join(20)
    assert "error" in outcome or b"[DONE]" not in outcome.get("body", b""), (
        "the stream should have been cut by the kill")
    # Its peer serves on; the victim comes back from its disk snapshot.
    net.serve_ok(peer)
    net.serve_ok(peer, stream=True)
    # The cut stream got its head and part of its answer: it is traced
    # when its data plane starts again, as a stream cut by the stop.
    with net.lock:
        net.calls.append((outcome["id"], 200))
    net.t.start(victim)
    net.wait_versions((victim,), net.cp_version())
    net.serve_ok(victim)
    rows = net.assert_traces_exact()
    [cut] = [r for r in rows if r["request_id"] == outcome["id"]]
    assert cut["error"] == "data plane stopped before the stream ended", cut
    assert {r["request_id"] for r in rows} >= set(before)


def test_a_region_cut_off_from_the_control_plane_for_30s(net: Net) -> None:
    v1 = net.cp_version()
    # A fresh key with a small minute limit: the region's Redis keeps
    # counting it for both data planes while the control plane is away.
    net.apply(net.config({"quota-cut": {"rpm": 4}}))
    v_quota = net.cp_version()
    assert v_quota != v1
    net.wait_versions(DATA_PLANES, v_quota)

    net.t.link("eu", up=False)
    cut_at = time.monotonic()
    try:
        # The control plane's side notices (keep-alives) and the region is
        # shown as away; meanwhile eu keeps serving.
        served_during_cut = []
        for i in range(4):
            served_during_cut.append(net.serve_ok(EU[i % 2], stream=bool(i % 2)))
        statuses = [net.call(EU[i % 2], key="quota-cut").status_code for i in range(6)]
        assert statuses == [200] * 4 + [429] * 2, statuses

        # A change made during the cut reaches us at once, not eu.
        net.apply(net.config({"quota-cut": {"rpm": 4}, "late": {}}))
        v2 = net.cp_version()
        net.wait_versions(US, v2)
        net.serve_ok("data-plane-us-1", key="late")
        for dp in EU:
            assert net.version(dp) == v_quota
            assert net.call(dp, key="late").status_code == 401
        # eu keeps serving, from the snapshot it holds, for the whole cut.
        i = 0
        while time.monotonic() - cut_at < CUT_SECS:
            served_during_cut.append(net.serve_ok(EU[i % 2], stream=bool(i % 3 == 0)))
            net.serve_ok(US[i % 2])
            i += 1
            time.sleep(1.0)
        eventually(lambda: _assert_metric(net, EU[0], "aigw_control_plane_connected", 0),
                   timeout=30, what="eu's data plane noticed the cut")
        assert net.metric(EU[0], "aigw_trace_spool_segments") >= 1
    finally:
        net.t.link("eu", up=True)

    # Back: eu gets the change made during the cut, and its traces.
    net.wait_versions(EU, v2, timeout=60)
    for dp in EU:
        net.serve_ok(dp, key="late")
        eventually(lambda dp=dp: _assert_metric(net, dp, "aigw_control_plane_connected", 1),
                   what=f"{dp} reconnected")
    rows = net.assert_traces_exact()
    by_id = {r["request_id"]: r for r in rows}
    for rid in served_during_cut:
        assert by_id[rid]["region"] == "eu"
    eventually(lambda: _assert_metric(net, EU[0], "aigw_trace_spool_segments", 0),
               what="eu's spool drained")


def test_control_plane_stopped_and_its_database_restarted(net: Net) -> None:
    keys = {"quota-cut": {"rpm": 4}, "late": {}, "q-outage": {"rpm": 2}}
    net.apply(net.config(keys))
    v = net.cp_version()
    net.wait_versions(DATA_PLANES, v)
    net.t.stop("control-plane")
    net.t.stop("postgres")
    outage = [net.serve_ok(dp, stream=bool(i % 2)) for i, dp in enumerate(DATA_PLANES)]
    # Quotas do not need the control plane: each region's Redis counts on.
    for region in (EU, US):
        statuses = [net.call(region[i % 2], key="q-outage").status_code for i in range(3)]
        assert statuses == [200, 200, 429], statuses
    net.t.start("postgres")
    # The database is back, the control plane not yet: still served.
    outage += [net.serve_ok(dp) for dp in DATA_PLANES]
    net.t.start("control-plane")
    assert net.cp_version() == v  # the same configuration, from the database
    # A change after the restart reaches every region.
    net.apply(net.config({**keys, "after-restart": {}}))
    v3 = net.cp_version()
    assert v3 != v
    net.wait_versions(DATA_PLANES, v3)
    for dp in DATA_PLANES:
        net.serve_ok(dp, key="after-restart")
    rows = net.assert_traces_exact()
    assert set(outage) <= {r["request_id"] for r in rows}


def test_a_regions_redis_stopped(net: Net) -> None:
    limited = {"quota-cut": {"rpm": 4}, "late": {}, "q-outage": {"rpm": 2}, "after-restart": {},
               "q-shared": {"rpm": 3}, "q-degraded": {"rpm": 3},
               "q-refuse": {"rpm": 100, "when_store_down": "refuse"}}
    net.apply(net.config(limited))
    net.wait_versions(DATA_PLANES, net.cp_version())
    # Shared: the region's two data planes count one limit together.
    shared = [net.call(EU[i % 2], key="q-shared").status_code for i in range(5)]
    assert shared == [200, 200, 200, 429, 429], shared

    net.t.stop("redis-eu")
    try:
        # Each data plane notices on its own (it pings its store), before
        # any request with limits asks it.
        for dp in EU:
            eventually(lambda dp=dp: _assert_metric(net, dp, "aigw_ratelimit_store_degraded", 1),
                       timeout=15, what=f"{dp} reporting its limit store down")
        # A budget that says so is refused while its store is down, in eu
        # only (429 naming the limit store).
        refused = net.call(EU[0], key="q-refuse")
        assert refused.status_code == 429 and "limit store" in refused.text, refused.text
        net.serve_ok(US[0], key="q-refuse")
        # The default policy fails open to in-process counters: each eu data
        # plane counts on its own, so the region admits the limit once per
        # data plane.
        per_dp = {dp: [net.call(dp, key="q-degraded").status_code for _ in range(4)] for dp in EU}
        for dp, statuses in per_dp.items():
            assert statuses == [200, 200, 200, 429], (dp, statuses)
            assert net.metric(dp, "aigw_ratelimit_store_degraded") == 1
        # us has its own Redis: the same key is still shared there.
        us = [net.call(US[i % 2], key="q-degraded").status_code for i in range(4)]
        assert us == [200, 200, 200, 429], us
        assert net.metric(US[0], "aigw_ratelimit_store_degraded") == 0
        net.serve_ok(EU[0])
    finally:
        net.t.start("redis-eu")

    def shared_again() -> None:
        # A key with limits asks Redis (its counts went with the restart).
        assert net.call(EU[0], key="q-shared").status_code in (200, 429)
        assert net.metric(EU[0], "aigw_ratelimit_store_degraded") == 0
    eventually(shared_again, what="eu's data plane back on its Redis")
    # The other eu data plane gets no request with limits now, and sees its
    # store back all the same.
    eventually(lambda: _assert_metric(net, EU[1], "aigw_ratelimit_store_degraded", 0),
               timeout=15, what=f"{EU[1]} reporting its limit store back")
    net.assert_traces_exact()


def test_every_process_of_the_topology_serves_valid_metrics(net: Net) -> None:
    tool = promtool()
    texts = {dp: httpx.get(net.urls[dp] + "/metrics", timeout=5).text for dp in DATA_PLANES}
    texts["control-plane"] = httpx.get(net.cp_metrics, timeout=5).text
    texts["admin-web"] = httpx.get("http://" + net.t.publish("admin-web") + "/metrics", timeout=5).text
    for name, text in texts.items():
        check_with_promtool(tool, name, text)
    cp = texts["control-plane"]
    assert re.search(r'^aigw_nodes_connected\{region="eu"\} 2$', cp, re.M), cp
    assert re.search(r'^aigw_nodes_current\{region="us"\} 2$', cp, re.M), cp


def _assert_metric(net: Net, dp: str, name: str, value: float) -> None:
    assert net.metric(dp, name) == value, f"{dp} {name}"
