"""Active health checks, owned by the control plane: every credential is
checked with its model listing (never billed), a bad one is found before any
app request meets it and skipped by the data plane within a check interval
plus a second, a recovered one is back within an interval, a credential that
fails a real request is checked at once, and an admin can check one now."""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import pytest

from admin_client import Api
from harness import MODEL, Gateway, eventually, free_port

INTERVAL = 5  # seconds, the smallest allowed
KEYS = {"good": "sk-good-0000000001", "revoked": "sk-revoked-00000002",
        "quota": "sk-quota-0000000003", "recovers": "sk-recovers-000004"}


@pytest.fixture
def backend() -> str:
    return "sqlite"


def config(mock_url: str, dead_port: int) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "pool", "kind": "openai-compatible", "base_url": mock_url, "models": ["gpt-4o*"],
             "strategy": "round-robin", "health_check": {"interval_secs": INTERVAL},
             "keys": [{"name": n, "secret": s} for n, s in KEYS.items()]},
            {"name": "dead", "kind": "openai-compatible", "base_url": f"http://127.0.0.1:{dead_port}",
             "models": ["dead-*"], "health_check": {"interval_secs": INTERVAL},
             "keys": [{"name": "dead-key", "secret": "sk-dead-000000005"}]},
        ],
        "pricing": [{"model": MODEL, "input": 1.0, "output": 1.0}],
        "client_keys": [{"name": "app", "key": "${E2E_APP_KEY}"}],
    }


def health(api: Api, pb: SimpleNamespace) -> dict[str, Any]:
    listed = api.call(api.admin.ListCredentialHealth, pb.admin_pb2.CredentialHealthQuery())
    return {f"{h.provider}/{h.key}": h for h in listed.current}


def chat(gw: Gateway) -> httpx.Response:
    return httpx.post(gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})


def used_keys(gw: Gateway) -> Counter[str]:
    by_secret = {s: n for n, s in KEYS.items()}
    return Counter(by_secret[r["headers"]["authorization"].removeprefix("Bearer ")]
                   for r in gw.mock.chat_requests())


def test_credentials_are_checked_skipped_and_taken_back(stack: Gateway, channel: grpc.Channel,
                                                        pb: SimpleNamespace) -> None:
    api = Api(pb, channel, stack.admin_token)
    stack.mock.set_key_state(KEYS["revoked"], "revoked")
    stack.mock.set_key_state(KEYS["quota"], "out_of_quota")
    stack.mock.set_key_state(KEYS["recovers"], "down")
    stack.apply_ok(config(stack.mock.url, free_port()))
    t_applied = time.monotonic()

    # Found by the schedule before any app request was made.
    expected = {"pool/good": "ok", "pool/revoked": "invalid_credential",
                "pool/quota": "quota_exhausted", "pool/recovers": "upstream_down",
                "dead/dead-key": "network_error"}

    def found() -> dict[str, Any]:
        h = health(api, pb)
        assert {k: v.status for k, v in h.items()} == expected, h
        return h

    h = eventually(found, timeout=10, what="every credential checked")
    assert all(v.trigger == "schedule" for v in h.values())
    assert h["pool/revoked"].http_status == 401 and KEYS["revoked"] not in h["pool/revoked"].detail
    assert stack.mock.requests() == [], "no app request yet"

    # The data plane skips them within an interval plus a second: every
    # request is served, by the good key only.
    stack.start_data_plane()
    stack.wait_key_known()
    eventually(lambda: chat(stack).status_code == 200, what="first request")
    assert time.monotonic() - t_applied < INTERVAL + 1 + 10
    stack.mock.clear()
    for _ in range(12):
        assert chat(stack).status_code == 200
    assert used_keys(stack) == Counter({"good": 12})

    # Recovered: back within one interval, and used again.
    stack.mock.set_key_state(KEYS["recovers"], "valid")
    t0 = time.monotonic()
    eventually(lambda: health(api, pb)["pool/recovers"].status == "ok",
               timeout=INTERVAL * 1.1 + 2, what="recovered key found well")
    assert time.monotonic() - t0 <= INTERVAL * 1.1 + 2

    def both_used() -> None:
        stack.mock.clear()
        for _ in range(8):
            assert chat(stack).status_code == 200
        assert set(used_keys(stack)) == {"good", "recovers"}, used_keys(stack)

    # A new snapshot must reach the data plane first: loaded CI machines take
    # seconds for that, which says nothing about the health check itself.
    eventually(both_used, timeout=15, what="recovered key back in the pool")

    # Checks are never billed: every generation call the mock saw was an app's.
    def checks_seen() -> list[dict[str, Any]]:
        checks = stack.mock.health_checks()
        assert checks, "no scheduled check since the mock was cleared"
        return checks

    checks = eventually(checks_seen, timeout=INTERVAL * 2 + 2, what="a scheduled check seen by the mock")
    assert all(r["method"] == "GET" and r["path"] == "/v1/models" for r in checks), checks


def test_a_failure_seen_by_a_data_plane_is_checked_at_once(stack: Gateway, channel: grpc.Channel,
                                                           pb: SimpleNamespace) -> None:
    api = Api(pb, channel, stack.admin_token)
    cfg = config(stack.mock.url, free_port())
    cfg["providers"][0]["strategy"] = "fill-first"
    cfg["providers"][0]["health_check"] = {"interval_secs": 3600}
    stack.apply_ok(cfg)
    stack.start_data_plane()
    stack.wait_key_known()
    eventually(lambda: health(api, pb)["pool/good"].status == "ok", what="first checks")
    # The good key is revoked upstream between checks: the app's request
    # fails on it, moves to the next key and is served; the control plane
    # checks the good key at once and takes it out.
    stack.mock.set_key_state(KEYS["good"], "revoked")
    r = chat(stack)
    assert r.status_code == 200, r.text
    t0 = time.monotonic()

    def checked() -> Any:
        h = health(api, pb)["pool/good"]
        assert (h.status, h.trigger) == ("invalid_credential", "data_plane"), h
        return h

    # "At once": well before the hour-long interval; the margin is for the
    # trace batch's trip and a loaded machine.
    eventually(checked, timeout=10, what="checked after the data plane saw it fail")
    assert time.monotonic() - t0 < 10
    # An admin asks: checked now, and the answer says what was found.
    stack.mock.set_key_state(KEYS["good"], "valid")
    now = api.call(api.admin.CheckCredential, pb.admin_pb2.CredentialRef(provider="pool", key="good"))
    assert (now.status, now.trigger, now.http_status) == ("ok", "admin", 200)
    listed = api.call(api.admin.ListCredentialHealth, pb.admin_pb2.CredentialHealthQuery(
        provider="pool", key="good", history=10))
    assert [c.trigger for c in listed.history][:2] == ["admin", "data_plane"]
    e = api.refused(api.admin.CheckCredential, pb.admin_pb2.CredentialRef(provider="pool", key="nope"))
    assert e.code() == grpc.StatusCode.NOT_FOUND
