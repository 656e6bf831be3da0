"""What an admin (or a stranger at the login) can send: every Admin API
input is bounded, a change the data planes would refuse is refused at
commit (so nothing freezes them), a revocation still reaches every data
plane within a second whatever was tried before; logins are throttled per
source (through admin-web too) so a stranger cannot lock a user out; child
tokens expire with their parent; the generated bootstrap token ends once
AIGW_ADMIN_TOKEN is set; state files are owner-only."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import grpc
import httpx
import pytest

from admin_client import Api, create_user, login
from harness import MODEL, Gateway, eventually, gateway_config
from ui_stack import AdminWeb


@pytest.fixture
def backend() -> str:
    return "sqlite"


def chat(gw: Gateway, key: str) -> httpx.Response:
    return httpx.post(gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})


def version(gw: Gateway) -> str:
    r = httpx.get(gw.dp_url + "/readyz", timeout=5)
    assert r.status_code == 200
    return r.text.split()[1]


def test_bad_admin_changes_are_refused_and_a_revocation_still_arrives_within_a_second(
        stack: Gateway, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    admin_pb2 = pb.admin_pb2
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}"},
        {"name": "victim", "key": "sk-aigw-victim-key-0000001"}]))
    stack.start_data_plane()
    stack.wait_key_known()
    stack.wait_key_known("sk-aigw-victim-key-0000001")
    root = Api(pb, channel, stack.admin_token)
    pw = create_user(root, "mallory", "member")
    mallory = login(pb, channel, "mallory", pw)
    before = version(stack)

    # 500,000 globs on a member's own key.
    e = mallory.refused(mallory.admin.UpsertClientKey, admin_pb2.ClientKeySpec(
        name="greedy", models=[f"m{i}*" for i in range(500_000)]))
    assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED), e
    # A secret that would break the header it goes into.
    e = root.refused(root.admin.UpsertProvider, admin_pb2.ProviderSpec(
        name="evil", kind="openai", keys=[admin_pb2.ProviderKeySpec(
            name="k", secret="sk-ok\r\nX-Injected: 1")]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "secret" in e.details(), e
    # A glob past 256 characters, a model map too big, a name too long.
    e = root.refused(root.admin.UpsertRoute, admin_pb2.RouteSpec(model="a" * 300 + "*",
                                                                 providers=["mock"]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    e = root.refused(root.admin.UpsertProvider, admin_pb2.ProviderSpec(
        name="mapped", kind="openai", model_map={f"a{i}": "b" for i in range(2000)}))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    e = root.refused(root.identity.CreateUser, pb.identity_pb2.CreateUserRequest(
        username="u" * 100, password="long-enough-password", role="viewer"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    # Nothing changed for the data plane.
    assert version(stack) == before
    assert chat(stack, "sk-aigw-victim-key-0000001").status_code == 200

    # The revocation reaches it within a second.
    root.call(root.admin.RevokeClientKey, admin_pb2.NameRequest(name="victim"))
    t0 = time.monotonic()

    def refused() -> None:
        assert chat(stack, "sk-aigw-victim-key-0000001").status_code == 401

    eventually(refused, timeout=1.0, what="revocation within 1 s")
    assert time.monotonic() - t0 <= 1.0
    assert chat(stack, stack.app_key).status_code == 200


def trusted(stack: Gateway) -> None:
    stack.cp_env["AIGW_TRUSTED_PROXIES"] = "127.0.0.1"
    stack.stop_control_plane()
    stack.start_control_plane()


def login_from(pb: SimpleNamespace, channel: grpc.Channel, source: str, user: str,
               password: str) -> grpc.StatusCode:
    stub = pb.identity_pb2_grpc.IdentityServiceStub(channel)
    try:
        stub.Login(pb.identity_pb2.LoginRequest(username=user, password=password),
                   metadata=[("x-aigw-client-ip", source)], timeout=30)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def test_logins_are_counted_before_verifying_and_throttled_per_source(
        stack: Gateway, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    trusted(stack)
    root = Api(pb, channel, stack.admin_token)
    pw = create_user(root, "ada", "admin")
    attacker = "198.51.100.7"
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(lambda _: login_from(pb, channel, attacker, "ada", "wrong guess"),
                              range(40)))
    # Five verified (and refused), every other refused before any hashing.
    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) == 5, codes
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 35, codes
    assert login_from(pb, channel, attacker, "ada", pw) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The stranger did not lock ada out: from her own address she logs in.
    assert login_from(pb, channel, "203.0.113.9", "ada", pw) == grpc.StatusCode.OK
    # Huge usernames are refused at once, kept nowhere, and change nothing:
    # past 64 KiB the message is not even decoded; below, before any lookup.
    big = "x" * (1024 * 1024)
    t0 = time.monotonic()
    for i in range(50):
        assert login_from(pb, channel, f"192.0.2.{i}", big, "pw") == grpc.StatusCode.OUT_OF_RANGE
        assert login_from(pb, channel, f"192.0.2.{i}", "x" * 60_000, "pw") == \
            grpc.StatusCode.UNAUTHENTICATED
    assert time.monotonic() - t0 < 20
    assert login_from(pb, channel, "203.0.113.9", "ada", pw) == grpc.StatusCode.OK


def browser(web: AdminWeb, source: str) -> httpx.Client:
    """A client of admin-web whose connections come from `source` (any
    127.0.0.0/8 address is this host's on Linux)."""
    return httpx.Client(base_url=web.url, timeout=60, headers={"x-aigw-csrf": "1"},
                        transport=httpx.HTTPTransport(local_address=source))


def ui_login(web: AdminWeb, source: str, user: str, password: str,
             headers: dict[str, str] | None = None) -> httpx.Response:
    with browser(web, source) as c:
        return c.post("/api/auth/login", json={"username": user, "password": password},
                      headers=headers or {})


def spray(web: AdminWeb, source: str, n: int, headers: Callable[[int], dict[str, str]]) -> list[int]:
    """`n` wrong passwords at once from `source`, each for another name (so
    only the per-source limit applies); their HTTP statuses."""
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(
            lambda i: ui_login(web, source, f"x{i}", "wrongpass", headers(i)).status_code,
            range(n)))


def test_a_stranger_at_the_ui_login_locks_out_only_their_own_address(
        stack: Gateway, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    """admin-web tells the control plane each browser's address: 25 wrong
    passwords from one address through the UI get that address 429, while
    an admin at another address still signs in. What the stranger claims in
    X-Forwarded-For or x-aigw-client-ip is not believed (admin-web trusts no
    proxy by default)."""
    trusted(stack)
    root = Api(pb, channel, stack.admin_token)
    pw = create_user(root, "ada", "admin")
    web = AdminWeb(stack)
    try:
        stranger, admin = "127.0.0.2", "127.0.0.3"
        codes = spray(web, stranger, 25, lambda i: {"x-forwarded-for": f"192.0.2.{i}",
                                                    "x-aigw-client-ip": f"198.51.100.{i}"})
        # Counted before verifying: twenty refused passwords, then refusals.
        assert sorted(codes) == [401] * 20 + [429] * 5, codes
        r = ui_login(web, stranger, "ada", pw)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "resource_exhausted", r.text
        assert int(r.headers["retry-after"]) >= 1, r.headers
        # ada, elsewhere, is not locked out.
        with browser(web, admin) as c:
            r = c.post("/api/auth/login", json={"username": "ada", "password": pw})
            assert r.status_code == 200, r.text
            assert "aigw_session" in c.cookies
            assert c.get("/api/auth/me").status_code == 200
    finally:
        web.stop()


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_source(
        stack: Gateway, channel: grpc.Channel, pb: SimpleNamespace) -> None:
    """With AIGW_ADMIN_TRUSTED_PROXIES naming the proxy, the client address
    it appends to X-Forwarded-For is the source (not the proxy's, nor what
    the client wrote further left); others' X-Forwarded-For is ignored."""
    trusted(stack)
    root = Api(pb, channel, stack.admin_token)
    pw = create_user(root, "ada", "admin")
    proxy = "127.0.0.4"
    web = AdminWeb(stack, AIGW_ADMIN_TRUSTED_PROXIES=proxy)
    try:
        # The stranger claims a fresh address each time; the proxy appends
        # the real one.
        codes = spray(web, proxy, 25, lambda i: {"x-forwarded-for": f"192.0.2.{i}, 198.51.100.7"})
        assert sorted(codes) == [401] * 20 + [429] * 5, codes
        r = ui_login(web, proxy, "ada", pw, {"x-forwarded-for": "198.51.100.7"})
        assert r.status_code == 429, r.text
        # ada behind the same proxy, and ada at an address of her own.
        r = ui_login(web, proxy, "ada", pw, {"x-forwarded-for": "198.51.100.7, 203.0.113.9"})
        assert r.status_code == 200, r.text
        assert ui_login(web, "127.0.0.3", "ada", pw).status_code == 200
        # Not a trusted proxy: its X-Forwarded-For is not believed.
        codes = spray(web, "127.0.0.5", 25, lambda i: {"x-forwarded-for": f"192.0.2.{i}"})
        assert sorted(codes) == [401] * 20 + [429] * 5, codes
    finally:
        web.stop()


def test_a_token_made_by_a_token_expires_with_it(stack: Gateway, channel: grpc.Channel,
                                                 pb: SimpleNamespace) -> None:
    ipb = pb.identity_pb2
    root = Api(pb, channel, stack.admin_token)
    pw = create_user(root, "olga", "operator")
    olga = login(pb, channel, "olga", pw)
    expiry = int(time.time() * 1000) + 3_600_000
    parent = olga.call(olga.identity.CreateApiToken, ipb.CreateApiTokenRequest(
        name="parent", role="operator", expires_at_ms=expiry))
    assert parent.info.expires_at_ms == expiry
    via_parent = Api(pb, channel, parent.token)
    child = via_parent.call(via_parent.identity.CreateApiToken,
                            ipb.CreateApiTokenRequest(name="child", role="viewer"))
    assert child.info.expires_at_ms == expiry, "no expiry asked: the parent's"
    e = via_parent.refused(via_parent.identity.CreateApiToken, ipb.CreateApiTokenRequest(
        name="outliver", role="viewer", expires_at_ms=expiry + 1000))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e


def test_the_generated_admin_token_ends_once_one_is_set(stack: Gateway, pb: SimpleNamespace) -> None:
    stack.stop_control_plane()
    # A fresh database started without AIGW_ADMIN_TOKEN prints one.
    db_path = stack.db.sqlite_path
    assert db_path is not None
    for f in db_path.parent.glob("aigw.db*"):
        f.unlink()
    stack.cp_env["AIGW_ADMIN_TOKEN"] = ""
    cp = stack.start_control_plane()
    generated = cp.wait_line(__import__("re").compile(r"^admin token: (\S+)$")).group(1)
    ch = grpc.insecure_channel(stack.cp_url.removeprefix("http://"))
    try:
        gen = Api(pb, ch, generated)
        gen.call(gen.admin.ListProviders, pb.admin_pb2.ListRequest())
        stack.stop_control_plane()
        del stack.cp_env["AIGW_ADMIN_TOKEN"]
        stack.start_control_plane()
        e = gen.refused(gen.admin.ListProviders, pb.admin_pb2.ListRequest())
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        setting = Api(pb, ch, stack.admin_token)
        setting.call(setting.admin.ListProviders, pb.admin_pb2.ListRequest())
    finally:
        ch.close()


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_state_files_are_owner_only(gw: Gateway) -> None:
    r = chat(gw, gw.app_key)
    assert r.status_code == 200
    gw.wait_traces([r.headers["x-request-id"]])
    db = gw.db.sqlite_path
    assert db is not None
    assert mode(db) == 0o600 and mode(db.parent) == 0o700
    state = gw.workdir / "dp-state"
    assert mode(state) == 0o700
    files = [p for p in state.rglob("*") if p.is_file()]
    dirs = [p for p in state.rglob("*") if p.is_dir()]
    assert files, "the snapshot copy is on disk"
    assert all(mode(p) == 0o600 for p in files), {str(p): oct(mode(p)) for p in files}
    assert all(mode(p) == 0o700 for p in dirs), {str(p): oct(mode(p)) for p in dirs}
