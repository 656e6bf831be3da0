"""OAuth accounts against a real OAuth 2.0 server no one here wrote
(npm `oauth2-mock-server`, e2e/oauth/server.mjs makes it as strict as a real
provider): connecting with PKCE through the Admin API, requests carrying the
access token and the template's headers, refresh before expiry with
refresh-token rotation, refresh at once after an upstream 401, a revoked
refresh token shown as an error state and skipped, and no refresh token on a
data plane's disk, in its snapshot, in its memory or in any log."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest

from admin_client import Api
from harness import ALL_PROCS, MODEL, REPO, Gateway, clean_env, eventually

OAUTH_DIR = REPO / "e2e" / "oauth"
LINE = re.compile(r"^oauth-server listening on (\S+) control (\S+)$")
ACCOUNT_ID = "acct-e2e-42"  # the claim server.mjs puts in its ID tokens


@pytest.fixture
def backend() -> str:
    return "sqlite"


class OAuthServer:
    """e2e/oauth/server.mjs on free ports, with its test controls."""

    def __init__(self, log_dir: Path):
        node = shutil.which("node")
        assert node, "node is required (e2e/run-tests.sh installs e2e/oauth with npm ci)"
        assert (OAUTH_DIR / "node_modules" / "oauth2-mock-server").is_dir(), \
            "run `npm ci` in e2e/oauth (e2e/run-tests.sh does)"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "oauth-server.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen([node, "server.mjs"], cwd=OAUTH_DIR, env=clean_env(),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=log, start_new_session=True)
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline().decode().strip()
        m = LINE.match(line)
        assert m, f"oauth-server said {line!r}; log: {self.log_path.read_text()[-2000:]}"
        self.url = m.group(1).replace("://localhost:", "://127.0.0.1:")
        self.control = httpx.Client(base_url=m.group(2), timeout=10)

    def state(self) -> dict[str, Any]:
        r = self.control.get("/state")
        r.raise_for_status()
        return r.json()

    def set_ttl(self, secs: int) -> None:
        self.control.post("/ttl", json={"secs": secs}).raise_for_status()

    def revoke_refresh_tokens(self) -> int:
        r = self.control.post("/revoke-refresh-tokens")
        r.raise_for_status()
        return r.json()["revoked"]

    def refreshes(self) -> list[dict[str, Any]]:
        return [e for e in self.state()["log"] if e["grant_type"] == "refresh_token"]

    def stop(self) -> None:
        self.control.close()
        self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[OAuthServer]:
    s = OAuthServer(tmp_path / "logs")
    yield s
    s.stop()


def config(mock_url: str, idp_url: str) -> dict[str, Any]:
    return {
        "oauth_templates": [{
            "name": "e2e-idp",
            "authorize_url": f"{idp_url}/authorize",
            "token_url": f"{idp_url}/token",
            "client_id": "aigw-e2e",
            "scopes": ["openid", "offline_access"],
            # A CLI-style redirect to a localhost page nobody serves.
            "redirect_uri": "http://localhost:1455/auth/callback",
            "authorize_params": {"prompt": "login"},
            "request_headers": {
                "chatgpt-account-id": "{id_token:/https:~1~1api.openai.com~1auth/chatgpt_account_id}",
                "x-e2e-beta": "oauth-2025-04-20",
            },
        }],
        "providers": [{
            "name": "acct", "kind": "openai-compatible", "base_url": mock_url,
            "models": ["gpt-4o*"], "health_check": {"interval_secs": 3600},
            "keys": [{"name": "a1", "oauth": "e2e-idp"}],
        }],
        "pricing": [{"model": MODEL, "input": 1.0, "output": 1.0}],
        "client_keys": [{"name": "app", "key": "${E2E_APP_KEY}"}],
    }


def account(api: Api, pb: SimpleNamespace) -> Any:
    (a,) = [a for a in api.call(api.admin.ListOAuthAccounts, pb.admin_pb2.ListRequest()).accounts
            if (a.provider, a.key) == ("acct", "a1")]
    return a


def connect(api: Api, pb: SimpleNamespace) -> Any:
    """StartOAuthConnect, the authorize redirect followed as a browser
    would, and the redirect URL pasted back into CompleteOAuthConnect."""
    start = api.call(api.admin.StartOAuthConnect,
                     pb.admin_pb2.OAuthConnectRequest(provider="acct", key="a1"))
    q = parse_qs(urlsplit(start.authorize_url).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43, q
    assert q["state"] == [start.state] and q["client_id"] == ["aigw-e2e"], q
    assert q["scope"] == ["openid offline_access"] and q["prompt"] == ["login"], q
    r = httpx.get(start.authorize_url, follow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    redirect = r.headers["location"]
    assert redirect.startswith("http://localhost:1455/auth/callback?"), redirect
    assert parse_qs(urlsplit(redirect).query)["state"] == [start.state]
    # Another connection's state is refused and does not use this one up.
    e = api.refused(api.admin.CompleteOAuthConnect,
                    pb.admin_pb2.OAuthCompleteRequest(state="not-" + start.state, code=redirect))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION, e
    done = api.call(api.admin.CompleteOAuthConnect, pb.admin_pb2.OAuthCompleteRequest(code=redirect))
    # The state is used once.
    e = api.refused(api.admin.CompleteOAuthConnect, pb.admin_pb2.OAuthCompleteRequest(code=redirect))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "already used" in e.details(), e
    return done


def chat(gw: Gateway) -> httpx.Response:
    return httpx.post(gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})


def ok_refreshes(idp: OAuthServer) -> list[dict[str, Any]]:
    ok = [e for e in idp.refreshes() if e["ok"]]
    assert ok, idp.refreshes()
    return ok


def last_upstream_token(gw: Gateway) -> str:
    reqs = gw.mock.chat_requests()
    assert reqs, "no request reached the provider"
    return reqs[-1]["headers"]["authorization"].removeprefix("Bearer ")


def snapshot_via_subscribe(gw: Gateway, pb: SimpleNamespace) -> bytes:
    """The snapshot a data plane receives, taken as a node would (one that
    says no version: it gets the whole snapshot, as encoded bytes)."""
    channel = grpc.insecure_channel(gw.cp_url.removeprefix("http://"))
    stub = pb.config_pb2_grpc.ConfigServiceStub(channel)
    md = [("authorization", f"Bearer {gw.node_token}"), ("x-aigw-node-id", "e2e-scan"),
          ("x-aigw-region", "e2e")]
    hello = pb.config_pb2.NodeMessage(hello=pb.config_pb2.Hello(node_id="e2e-scan", region="e2e"))
    try:
        for msg in stub.Subscribe(iter([hello]), metadata=md, timeout=10):
            assert msg.snapshot, "a node with no version gets the whole snapshot"
            return msg.snapshot
    finally:
        channel.close()
    raise AssertionError("no snapshot")


def memory_of(pid: int) -> bytes:
    """Every readable mapping of a process (we are root in CI)."""
    out = bytearray()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r") or "[vvar]" in line or "[vsyscall]" in line:
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            try:
                mem.seek(lo)
                out += mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
    return bytes(out)


def test_connect_refresh_rotation_and_no_refresh_token_leaves(
        stack: Gateway, idp: OAuthServer, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    api = Api(pb, channel, stack.admin_token)
    idp.set_ttl(20)
    stack.apply_ok(config(stack.mock.url, idp.url))
    assert account(api, pb).status == "not_connected"
    t_connect = time.time() * 1000
    done = connect(api, pb)
    assert done.status == "connected", done
    assert done.headers["chatgpt-account-id"] == ACCOUNT_ID
    assert abs(done.expires_at_ms - (t_connect + 20_000)) < 5_000, done
    first_access = idp.state()["issued_access"][-1]

    # Requests reach the provider with the access token and the template's headers.
    stack.start_data_plane()
    stack.wait_key_known()
    eventually(lambda: chat(stack).status_code == 200, what="first OAuth request")
    rec = stack.mock.chat_requests()[-1]
    assert rec["headers"]["authorization"] == f"Bearer {first_access}"
    assert rec["headers"]["chatgpt-account-id"] == ACCOUNT_ID
    assert rec["headers"]["x-e2e-beta"] == "oauth-2025-04-20"

    # Refreshed before expiry (a third of 20 s early), twice: the second
    # refresh only works if the rotated refresh token from the first was
    # stored (the server refuses a used one with invalid_grant).
    def refreshed_twice() -> list[dict[str, Any]]:
        ok = [e for e in idp.refreshes() if e["ok"]]
        assert len(ok) >= 2, idp.refreshes()
        return ok

    ok = eventually(refreshed_twice, timeout=45, what="two refreshes")
    assert ok[0]["at"] < done.expires_at_ms, "the first refresh came after the token expired"
    assert all(e["ok"] for e in idp.refreshes()), idp.refreshes()
    a = account(api, pb)
    assert (a.status, a.failures, a.last_error) == ("connected", 0, ""), a
    assert a.last_refresh_ms > done.last_refresh_ms and a.expires_at_ms > done.expires_at_ms
    st = idp.state()
    assert len(st["live_refresh"]) == 1 and st["issued_refresh"][0] not in st["live_refresh"]

    # The data plane uses the new access token.
    def new_token_used() -> None:
        assert chat(stack).status_code == 200
        assert last_upstream_token(stack) == idp.state()["issued_access"][-1]
        assert last_upstream_token(stack) != first_access

    eventually(new_token_used, timeout=10, what="refreshed access token in use")

    # No refresh token anywhere a data plane or a log could hold it.
    refresh_tokens = [t.encode() for t in idp.state()["issued_refresh"]]
    assert refresh_tokens
    snap = snapshot_via_subscribe(stack, pb)
    assert idp.state()["issued_access"][-1].encode() in snap, "the snapshot carries the access token"
    places: dict[str, bytes] = {"snapshot": snap}
    state_dir = stack.workdir / "dp-state"
    files = [p for p in state_dir.rglob("*") if p.is_file()]
    assert files, "the data plane wrote its state"
    places.update({f"dp disk {p}": p.read_bytes() for p in files})
    places.update({f"log {p.log_path.name}": p.log_path.read_bytes()
                   for p in ALL_PROCS if p.log_path.exists()})
    places["log oauth-server"] = idp.log_path.read_bytes()
    assert stack.dp is not None
    places["data-plane memory"] = memory_of(stack.dp.popen.pid)
    assert first_access.encode() in places["data-plane memory"] or \
        idp.state()["issued_access"][-1].encode() in places["data-plane memory"], \
        "the memory scan reads the process (it sees the access token)"
    for where, data in places.items():
        for t in refresh_tokens:
            assert t not in data, f"a refresh token is in {where}"


def test_refresh_on_401_and_revoked_refresh_token(
        stack: Gateway, idp: OAuthServer, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    api = Api(pb, channel, stack.admin_token)
    idp.set_ttl(3600)  # no refresh is due: only the 401 can cause one
    stack.apply_ok(config(stack.mock.url, idp.url))
    connect(api, pb)
    stack.start_data_plane()
    stack.wait_key_known()
    eventually(lambda: chat(stack).status_code == 200, what="first OAuth request")
    old = last_upstream_token(stack)
    assert idp.refreshes() == []

    # The provider stops taking the access token: the data plane's request
    # gets 401, its trace tells the control plane, which refreshes at once
    # and pushes the new token.
    stack.mock.set_key_state(old, "revoked")
    r = chat(stack)
    assert r.status_code >= 400, r.text
    t0 = time.monotonic()
    eventually(lambda: ok_refreshes(idp), timeout=10, what="refresh after the 401")

    def served_with_new_token() -> None:
        assert chat(stack).status_code == 200
        assert last_upstream_token(stack) != old

    eventually(served_with_new_token, timeout=10, what="new access token in use after 401")
    assert time.monotonic() - t0 < 10

    # The refresh token is revoked at the provider: a refresh (asked by an
    # admin here) gets invalid_grant; the account shows it, and the data
    # plane stops using the key.
    assert idp.revoke_refresh_tokens() == 1
    a = api.call(api.admin.RefreshOAuthAccount, pb.admin_pb2.CredentialRef(provider="acct", key="a1"))
    assert a.status == "revoked" and "invalid_grant" in a.last_error, a
    assert account(api, pb).status == "revoked"
    providers = api.call(api.admin.ListProviders, pb.admin_pb2.ListRequest()).providers
    (k,) = [k for p in providers if p.name == "acct" for k in p.keys]
    assert (k.oauth_template, k.oauth.status) == ("e2e-idp", "revoked")

    def skipped() -> None:
        stack.mock.clear()
        r = chat(stack)
        assert r.status_code in (429, 502, 503), (r.status_code, r.text)
        assert stack.mock.chat_requests() == [], "the revoked account was still used"

    eventually(skipped, timeout=5, what="revoked account skipped by the data plane")

    # Reconnecting brings it back.
    assert connect(api, pb).status == "connected"
    eventually(lambda: chat(stack).status_code == 200, timeout=10,
               what="served again after reconnecting")


def test_a_health_check_refused_with_401_refreshes_the_account_before_any_app_request(
        stack: Gateway, idp: OAuthServer, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    """The provider stops taking a connected account's access token while
    no app is calling: the control plane's own health check gets the 401,
    the account is refreshed at once (not at expiry, an hour away), and the
    first app request afterwards already carries the new token."""
    api = Api(pb, channel, stack.admin_token)
    idp.set_ttl(3600)  # no refresh is due: only the probe's 401 can cause one
    cfg = config(stack.mock.url, idp.url)
    cfg["providers"][0]["health_check"] = {"interval_secs": 5}
    stack.apply_ok(cfg)
    connect(api, pb)
    first = idp.state()["issued_access"][-1]

    def probed_with(token: str) -> list[dict[str, Any]]:
        seen = [r for r in stack.mock.health_checks()
                if r["headers"].get("authorization") == f"Bearer {token}"]
        assert seen, [r["headers"].get("authorization", "")[:16] for r in stack.mock.health_checks()]
        return seen

    eventually(lambda: probed_with(first), timeout=15, what="a health check with the access token")
    assert idp.refreshes() == []
    stack.mock.set_key_state(first, "revoked")
    ok = eventually(lambda: ok_refreshes(idp), timeout=20,
                    what="a refresh after the health check's 401")
    assert len(ok) == 1, idp.refreshes()
    new = idp.state()["issued_access"][-1]
    assert new != first
    a = account(api, pb)
    assert (a.status, a.failures) == ("connected", 0), a
    # The probe with the new token passes, and no app request was needed.
    eventually(lambda: probed_with(new), timeout=15, what="a health check with the new token")
    assert stack.mock.chat_requests() == []

    stack.start_data_plane()
    stack.wait_key_known()
    r = chat(stack)
    assert r.status_code == 200, r.text
    assert last_upstream_token(stack) == new
