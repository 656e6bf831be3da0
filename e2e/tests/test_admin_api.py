"""The Admin API as automation uses it: a Python grpcio client generated from
proto/ at test time (as users would write one), against the real binaries.

Users, a scoped API token, a provider, a member's own client key; a call to
the data plane with that key; its trace and usage read back; RBAC (a viewer
cannot change anything, a member cannot see another's keys); revoking the
key makes the data plane refuse it within a second; health and reflection.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import grpc
import openai
import pytest

from harness import (
    MODEL,
    POOL_SECRET,
    PRICE_CACHED_INPUT,
    PRICE_INPUT,
    PRICE_OUTPUT,
    Expected,
    Gateway,
    eventually,
    gateway_config,
)

from admin_client import RPC_TIMEOUT, Api, create_user, login


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_automation_client_end_to_end(stack: Gateway, channel: grpc.Channel,
                                      pb: SimpleNamespace) -> None:
    admin_pb2, identity_pb2, insight_pb2 = pb.admin_pb2, pb.identity_pb2, pb.insight_pb2
    root = Api(pb, channel, stack.admin_token)

    # Users, created by the bootstrap token; an operator's scoped API token.
    passwords = {name: create_user(root, name, role) for name, role in [
        ("alice", "operator"), ("mia", "member"), ("mo", "member"), ("vic", "viewer")]}
    alice = login(pb, channel, "alice", passwords["alice"])
    made = alice.call(alice.identity.CreateApiToken, identity_pb2.CreateApiTokenRequest(
        name="alice-automation", role="operator"))
    assert made.token.startswith("aigw-t-") and made.info.owner == "alice"
    bot = Api(pb, channel, made.token)
    listed = bot.call(bot.identity.ListApiTokens, identity_pb2.ListApiTokensRequest())
    assert made.token not in str(listed) and any(t.name == "alice-automation" for t in listed.tokens)
    # Scoped: an operator token cannot manage users or mint an admin token.
    e = bot.refused(bot.identity.CreateUser, identity_pb2.CreateUserRequest(
        username="eve", password="eve-e2e-password", role="admin"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
    e = bot.refused(bot.identity.CreateApiToken, identity_pb2.CreateApiTokenRequest(
        name="escalate", role="admin"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e

    # Configuration through the token: provider (secret write-only), price.
    r = bot.call(bot.admin.UpsertProvider, admin_pb2.ProviderSpec(
        name="mock", kind="openai-compatible", base_url=stack.mock.url,
        models=["gpt-4o*"], strategy="round-robin",
        keys=[admin_pb2.ProviderKeySpec(name="pool-a", secret=POOL_SECRET, weight=1)]))
    assert r.created
    bot.call(bot.admin.UpsertPrice, admin_pb2.PriceSpec(
        model=MODEL, input=PRICE_INPUT, output=PRICE_OUTPUT, cached_input=PRICE_CACHED_INPUT))
    providers = bot.call(bot.admin.ListProviders, admin_pb2.ListRequest())
    assert POOL_SECRET not in str(providers)
    assert providers.providers[0].keys[0].secret_hint.endswith(POOL_SECRET[-4:])

    # A member creates her own client key: shown once.
    mia = login(pb, channel, "mia", passwords["mia"])
    r = mia.call(mia.admin.UpsertClientKey, admin_pb2.ClientKeySpec(name="mia-app", rpm=600))
    assert r.created and r.generated_key.startswith("sk-aigw-")
    key = r.generated_key
    [info] = mia.call(mia.admin.ListClientKeys, admin_pb2.ListRequest()).client_keys
    assert info.owner == "mia" and key not in str(info)

    # The data plane serves it.
    stack.start_data_plane()
    stack.wait_key_known(key)
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello admin api"}]
    resp = stack.client(api_key=key).chat.completions.create(model=MODEL, messages=messages)
    exp = Expected.for_messages(messages)
    assert resp.choices[0].message.content == exp.reply
    request_id = resp._request_id
    assert request_id

    # Its trace, read back through the API by its owner.
    def listed_trace() -> Any:
        page = mia.call(mia.insight.ListTraces, insight_pb2.TraceQuery(client_key="mia-app"))
        [t] = [t for t in page.traces if t.request_id == request_id]
        return t

    summary = eventually(listed_trace, what="trace listed")
    assert (summary.model, summary.provider, summary.status, summary.owner) == (MODEL, "mock", 200, "mia")
    detail = mia.call(mia.insight.GetTrace, insight_pb2.GetTraceRequest(request_id=request_id))
    t = detail.trace
    assert (t.input_tokens, t.output_tokens, t.cached_tokens) == (
        exp.prompt_tokens, exp.completion_tokens, exp.cached_tokens)
    assert abs(t.cost - exp.cost) <= 1e-12 + 1e-9 * exp.cost
    assert t.region == "e2e" and t.client_key_name == "mia-app" and not t.error
    assert [(a.provider, a.provider_key, a.status) for a in detail.attempts] == [("mock", "pool-a", 200)]

    # And its usage, per key, for the owner and for the operator.
    for who in (mia, bot):
        usage = who.call(who.insight.GetUsage, insight_pb2.UsageQuery(
            bucket=insight_pb2.BUCKET_HOUR, group_by=insight_pb2.GROUP_BY_KEY))
        assert usage.totals.requests == 1 and usage.totals.errors == 0
        [series] = usage.series
        assert series.group == "mia-app"
        assert (series.totals.input_tokens, series.totals.output_tokens) == (
            exp.prompt_tokens, exp.completion_tokens)
        assert abs(series.totals.cost - exp.cost) <= 1e-12 + 1e-9 * exp.cost
        assert len(series.points) == 1 and series.points[0].stats.requests == 1
        assert series.totals.latency_p50_ms > 0
        assert series.totals.latency_p99_ms >= series.totals.latency_p50_ms
    pool = bot.call(bot.insight.GetPoolHealth, insight_pb2.PoolHealthQuery())
    [pool_a] = [k for k in pool.keys if k.key == "pool-a"]
    assert pool_a.configured and pool_a.requests == 1 and pool_a.errors == 0

    # A viewer reads but cannot change anything.
    vic = login(pb, channel, "vic", passwords["vic"])
    viewer_token = vic.call(vic.identity.CreateApiToken,
                            identity_pb2.CreateApiTokenRequest(name="vic-ro")).token
    viewer = Api(pb, channel, viewer_token)
    assert len(viewer.call(viewer.admin.ListClientKeys, admin_pb2.ListRequest()).client_keys) == 1
    for method, request in [
        (viewer.admin.UpsertProvider, admin_pb2.ProviderSpec(name="x", kind="openai")),
        (viewer.admin.DeleteProvider, admin_pb2.NameRequest(name="mock")),
        (viewer.admin.RevokeClientKey, admin_pb2.NameRequest(name="mia-app")),
        (viewer.admin.UpsertPrice, admin_pb2.PriceSpec(model="m", input=1, output=1)),
    ]:
        e = viewer.refused(method, request)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        assert "viewer" in e.details(), e.details()

    # Another member sees none of Mia's keys, traces or usage, and cannot touch them.
    mo = login(pb, channel, "mo", passwords["mo"])
    assert list(mo.call(mo.admin.ListClientKeys, admin_pb2.ListRequest()).client_keys) == []
    assert list(mo.call(mo.insight.ListTraces, insight_pb2.TraceQuery()).traces) == []
    assert mo.call(mo.insight.GetUsage, insight_pb2.UsageQuery()).totals.requests == 0
    for method, request in [
        (mo.admin.RevokeClientKey, admin_pb2.NameRequest(name="mia-app")),
        (mo.admin.UpsertClientKey, admin_pb2.ClientKeySpec(name="mia-app")),
        (mo.insight.GetTrace, insight_pb2.GetTraceRequest(request_id=request_id)),
        (mo.identity.UpdateUser, identity_pb2.UpdateUserRequest(username="mo", role="admin")),
    ]:
        e = mo.refused(method, request)
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e

    # Revoking the key: the data plane refuses it within a second.
    r = mia.call(mia.admin.RevokeClientKey, admin_pb2.NameRequest(name="mia-app"))
    revoked_at = time.monotonic()
    assert r.revoked
    app = stack.client(api_key=key)

    def refused() -> None:
        with pytest.raises(openai.AuthenticationError):
            app.chat.completions.create(model=MODEL, messages=messages)

    eventually(refused, timeout=1.0, what="revoked key refused by the data plane")
    assert time.monotonic() - revoked_at < 1.0

    # The audit log has every change, by whom, and no secret.
    log = bot.call(bot.identity.ListAuditLog, identity_pb2.AuditQuery(page_size=500))
    entries = [(e.actor, e.action, e.object_kind, e.object_name) for e in log.entries]
    for expected in [
        ("bootstrap", "create", "user", "mia"),
        ("token:alice-automation", "create", "provider", "mock"),
        ("user:mia", "create", "client_key", "mia-app"),
        ("user:mia", "revoke", "client_key", "mia-app"),
    ]:
        assert expected in entries, entries
    text = str(log)
    for secret in (POOL_SECRET, key, made.token, passwords["mia"]):
        assert secret not in text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_errors_health_and_reflection(stack: Gateway, channel: grpc.Channel,
                                      pb: SimpleNamespace) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )
    from google.protobuf.descriptor_pool import DescriptorPool

    # Status codes with clear messages.
    anonymous = Api(pb, channel, None)
    e = anonymous.refused(anonymous.admin.ListProviders, pb.admin_pb2.ListRequest())
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in e.details()
    stranger = Api(pb, channel, "not-a-token")
    e = stranger.refused(stranger.admin.ListProviders, pb.admin_pb2.ListRequest())
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    root = Api(pb, channel, stack.admin_token)
    e = root.refused(root.admin.UpsertRoute, pb.admin_pb2.RouteSpec(model="gpt-*", providers=["ghost"]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "ghost" in e.details()
    e = root.refused(root.admin.RevokeClientKey, pb.admin_pb2.NameRequest(name="ghost"))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    create_user(root, "dup", "viewer")
    e = root.refused(root.identity.CreateUser, pb.identity_pb2.CreateUserRequest(
        username="dup", password="dup-e2e-password", role="viewer"))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS
    e = anonymous.refused(anonymous.identity.Login,
                          pb.identity_pb2.LoginRequest(username="dup", password="wrong-password"))
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED
    roles = root.call(root.identity.ListRoles, pb.identity_pb2.ListRolesRequest())
    assert [r.name for r in roles.roles] == ["admin", "operator", "viewer", "member"]
    assert "/aigw.admin.v1.IdentityService/Login" in roles.public_methods

    # Health, per service.
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", "aigw.admin.v1.AdminService", "aigw.admin.v1.IdentityService",
                    "aigw.admin.v1.InsightService"]:
        r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
        assert r.status == health_pb2.HealthCheckResponse.SERVING, service

    # Reflection: a generic client discovers the services and their methods.
    reflection = ProtoReflectionDescriptorDatabase(channel)
    services = set(reflection.get_services())
    assert {"aigw.admin.v1.AdminService", "aigw.admin.v1.IdentityService",
            "aigw.admin.v1.InsightService"} <= services, services
    pool = DescriptorPool(reflection)
    insight = pool.FindServiceByName("aigw.admin.v1.InsightService")
    assert {m.name for m in insight.methods} >= {"ListTraces", "GetTrace", "GetUsage", "GetPoolHealth"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_apply_prune_leaves_keys_that_users_own(stack: Gateway, channel: grpc.Channel,
                                                pb: SimpleNamespace) -> None:
    # A file manages what it names; a member's own key was made through the
    # API and must survive `apply --prune` of a file that never knew it.
    root = Api(pb, channel, stack.admin_token)
    member = login(pb, channel, "mia", create_user(root, "mia", "member"))
    made = member.call(member.admin.UpsertClientKey, pb.admin_pb2.ClientKeySpec(name="mia-key"))
    assert made.created and made.generated_key
    config = gateway_config(stack.mock.url)
    r = stack.apply_ok(config, prune=True)
    assert "deleted client_key mia-key" not in r.lines
    keys = root.call(root.admin.ListClientKeys, pb.admin_pb2.ListRequest()).client_keys
    assert {k.name for k in keys} >= {"mia-key", "app"}
    # A key no user owns and the file no longer names is pruned.
    config["client_keys"] = []
    r = stack.apply_ok(config, prune=True)
    assert "deleted client_key app" in r.lines
    keys = root.call(root.admin.ListClientKeys, pb.admin_pb2.ListRequest()).client_keys
    assert {k.name for k in keys} == {"mia-key"}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_repeated_failed_logins_lock_the_name_for_a_while(stack: Gateway, channel: grpc.Channel,
                                                          pb: SimpleNamespace) -> None:
    root = Api(pb, channel, stack.admin_token)
    password = create_user(root, "lou", "viewer")
    anonymous = Api(pb, channel, None)
    for _ in range(5):
        e = anonymous.refused(anonymous.identity.Login,
                              pb.identity_pb2.LoginRequest(username="lou", password="guess"))
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    # Even the right password is refused until the lockout ends.
    e = anonymous.refused(anonymous.identity.Login,
                          pb.identity_pb2.LoginRequest(username="lou", password=password))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    assert "try again" in e.details()
    # Other users are not affected.
    create_user(root, "lena", "viewer")
    login(pb, channel, "lena", "lena-e2e-password")
