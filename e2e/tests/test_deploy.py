"""docker-compose.yml as a user relies on it, checked against the real
binaries (no Docker needed): every service of ours runs one of the three
binaries, every setting it is given is one that binary documents in
`--help` (a misspelt variable is silently ignored at run time, so only this
catches it), the data planes find the control plane over TLS with client
certificates, the default ports are published (the control plane's on
loopback only, Postgres and Redis not at all), each data plane has its own
identity and state volume, and each region its own Redis.

Each check is a function over the parsed file, so the last test can show
that every one of them fails on a broken copy.
"""

from __future__ import annotations

import copy
import re
import subprocess
from functools import cache
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest
import yaml

from harness import REPO, binary, clean_env

COMPOSE = REPO / "docker-compose.yml"
BINARIES = ("control-plane", "data-plane", "admin-web")
# The settings the test holds to `--help` (others, like POSTGRES_*, belong
# to third-party images).
OURS = re.compile(r"^(AIGW_[A-Z0-9_]+|OTEL_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)$")
ENV_IN_HELP = re.compile(r"\[env: ([A-Z0-9_]+)[=\]]")
# PRODUCT.md's defaults: data plane, admin web, control-plane gRPC.
DEFAULT_PORTS = {"data-plane": 8080, "admin-web": 9090, "control-plane": 50051}
# Where each binary listens, and the default when its variable is not set.
LISTEN_VAR = {
    "data-plane": ("AIGW_LISTEN", "0.0.0.0:8080"),
    "admin-web": ("AIGW_ADMIN_LISTEN", "0.0.0.0:9090"),
    "control-plane": ("AIGW_GRPC_ADDR", "0.0.0.0:50051"),
}

Compose = dict[str, Any]


# ---------------------------------------------------------------- reading the file


def load() -> Compose:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and isinstance(doc.get("services"), dict), (
        f"{COMPOSE} has no services"
    )
    return doc


def command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command")
    if cmd is None:
        return []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def is_ours(svc: dict[str, Any]) -> bool:
    """Built from this repository (the image with the three binaries)."""
    return "build" in svc or str(svc.get("image", "")).startswith("aigw")


def services_running(doc: Compose, name: str) -> dict[str, dict[str, Any]]:
    return {
        s: svc
        for s, svc in doc["services"].items()
        if is_ours(svc) and command(svc)[:1] == [name]
    }


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def published(svc: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port, from short (`[IP:]HOST:CONTAINER`) or
    long syntax."""
    out: dict[int, int] = {}
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out[int(p["published"])] = int(p["target"])
            continue
        parts = str(p).split("/")[0].split(":")
        if len(parts) >= 2:
            out[int(parts[-2])] = int(parts[-1])
    return out


@cache
def documented_env(args: tuple[str, ...]) -> frozenset[str]:
    """The variables `BINARY [SUBCOMMAND] --help` documents."""
    out = subprocess.run(
        [str(binary(args[0])), *args[1:], "--help"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, f"{' '.join(args)} --help failed: {out.stderr}"
    found = frozenset(ENV_IN_HELP.findall(out.stdout))
    assert found, f"{' '.join(args)} --help lists no environment variables:\n{out.stdout}"
    return found


# ---------------------------------------------------------------- the checks


def check_commands(doc: Compose) -> None:
    """Every service of ours runs one of the three binaries; each binary runs."""
    ours = {s: svc for s, svc in doc["services"].items() if is_ours(svc)}
    assert ours, "no service is built from this repository"
    for name, svc in ours.items():
        cmd = command(svc)
        assert cmd and cmd[0] in BINARIES, (
            f"service {name}: command {cmd} is not one of {BINARIES}"
        )
    running = {command(svc)[0] for svc in ours.values()}
    assert running == set(BINARIES), f"not every binary runs: {sorted(running)}"


def check_env_documented(doc: Compose) -> None:
    """Every AIGW_*/DATABASE_URL/REDIS_URL a service sets is in its --help."""
    for name, svc in doc["services"].items():
        if not is_ours(svc):
            continue
        cmd = command(svc)
        # `control-plane serve` documents its own flags; options are not
        # subcommands.
        args = tuple(c for c in cmd if not c.startswith("-"))
        known = documented_env(args)
        for var in environment(svc):
            if OURS.match(var):
                assert var in known, (
                    f"service {name} sets {var}, which `{' '.join(args)} --help` does not "
                    f"document (it would be ignored); documented: {sorted(known)}"
                )


def check_control_plane_address(doc: Compose) -> None:
    """Data planes and admin-web call the control-plane service on 50051
    over TLS, trusting its CA and presenting a client certificate, where it
    listens on all interfaces with TLS and a client CA (mTLS)."""
    cps = services_running(doc, "control-plane")
    assert len(cps) == 1, f"expected one control-plane service, found {sorted(cps)}"
    (cp_name, cp), = cps.items()
    var, default = LISTEN_VAR["control-plane"]
    cp_env = environment(cp)
    grpc_addr = cp_env.get(var, default)
    assert port_of(grpc_addr) == 50051, f"{cp_name}: {var}={grpc_addr} is not port 50051"
    assert not grpc_addr.startswith("127."), (
        f"{cp_name}: {var}={grpc_addr} is unreachable from the other containers"
    )
    for tls in ("AIGW_TLS_CERT", "AIGW_TLS_KEY", "AIGW_TLS_CLIENT_CA"):
        assert cp_env.get(tls), f"{cp_name}: {tls} is not set: gRPC would be plaintext or open"
    for binary_name in ("data-plane", "admin-web"):
        for name, svc in services_running(doc, binary_name).items():
            env = environment(svc)
            url = env.get("AIGW_CONTROL_PLANE", "")
            u = urlsplit(url)
            assert (u.scheme, u.hostname, u.port) == ("https", cp_name, 50051), (
                f"service {name}: AIGW_CONTROL_PLANE={url!r} should be "
                f"https://{cp_name}:50051"
            )
            for tls in ("AIGW_CA_FILE", "AIGW_TLS_CLIENT_CERT", "AIGW_TLS_CLIENT_KEY"):
                assert env.get(tls), f"service {name}: {tls} is not set (mTLS)"


def check_nothing_else_published(doc: Compose) -> None:
    """Only the apps' and admins' ports reach the network: the control
    plane's gRPC port is bound to the host's loopback, and no third-party
    service (Postgres, Redis) is published."""
    for name, svc in doc["services"].items():
        ports = svc.get("ports") or []
        if not is_ours(svc):
            assert not ports, f"service {name} publishes {ports}"
            continue
        if command(svc)[:1] == ["control-plane"]:
            for p in ports:
                host = p.get("host_ip", "") if isinstance(p, dict) else (
                    str(p).split(":")[0] if str(p).count(":") >= 2 else "")
                assert host.startswith("127."), (
                    f"service {name} publishes {p} beyond the host's loopback"
                )


def check_redis_per_region(doc: Compose) -> None:
    """Each region's data planes share one Redis, and no two regions share one."""
    by_region: dict[str, set[str]] = {}
    for name, svc in services_running(doc, "data-plane").items():
        env = environment(svc)
        host = urlsplit(env.get("REDIS_URL", "")).hostname
        assert host in doc["services"], f"service {name}: REDIS_URL names no service"
        by_region.setdefault(env.get("AIGW_REGION", ""), set()).add(host)
    assert len(by_region) >= 2, f"expected two regions, found {sorted(by_region)}"
    for region, hosts in by_region.items():
        assert len(hosts) == 1, f"region {region} uses several Redis servers: {hosts}"
    all_hosts = [next(iter(h)) for h in by_region.values()]
    assert len(set(all_hosts)) == len(all_hosts), f"regions share a Redis: {by_region}"


def check_default_ports(doc: Compose) -> None:
    """8080, 9090 and 50051 are published, each to where its binary listens
    (on all interfaces, or the published port reaches nothing)."""
    for binary_name, port in DEFAULT_PORTS.items():
        var, default = LISTEN_VAR[binary_name]
        targets = []
        for name, svc in services_running(doc, binary_name).items():
            listen = environment(svc).get(var, default)
            if port in published(svc):
                targets.append((name, published(svc)[port], listen))
        assert targets, f"no {binary_name} service publishes host port {port}"
        for name, target, listen in targets:
            assert target == port_of(listen), (
                f"service {name} publishes {port}:{target} but listens on {listen} ({var})"
            )
            assert listen.split(":")[0] in ("0.0.0.0", "[::]", "::"), (
                f"service {name}: {var}={listen} is not reachable through the published port"
            )


def check_data_planes(doc: Compose) -> None:
    """Each data plane: its own AIGW_NODE_ID, a volume of its own at
    AIGW_STATE_DIR, the control plane's node token, and a health check on
    the port it listens on."""
    dps = services_running(doc, "data-plane")
    assert dps, "no data-plane service"
    cp_env = environment(next(iter(services_running(doc, "control-plane").values())))
    node_ids: dict[str, str] = {}
    volumes: dict[str, str] = {}
    for name, svc in dps.items():
        env = environment(svc)
        node_id = env.get("AIGW_NODE_ID", "")
        assert node_id, f"service {name} sets no AIGW_NODE_ID (it would be the container id)"
        assert node_id not in node_ids, (
            f"services {node_ids[node_id]} and {name} share AIGW_NODE_ID={node_id}"
        )
        node_ids[node_id] = name
        state_dir = env.get("AIGW_STATE_DIR", "")
        assert state_dir.startswith("/"), f"service {name}: AIGW_STATE_DIR={state_dir!r}"
        mounts = {}
        for v in svc.get("volumes") or []:
            if isinstance(v, dict):
                mounts[str(v["target"]).rstrip("/")] = str(v.get("source", ""))
            else:
                parts = str(v).split(":")
                if len(parts) >= 2:
                    mounts[parts[1].rstrip("/")] = parts[0]
        source = mounts.get(state_dir.rstrip("/"))
        assert source, (
            f"service {name}: no volume at AIGW_STATE_DIR={state_dir}: its snapshot copy "
            "and undelivered traces would be lost with the container"
        )
        if not source.startswith((".", "/", "~")):
            assert source in (doc.get("volumes") or {}), (
                f"service {name}: volume {source} is not declared under volumes:"
            )
        assert source not in volumes, (
            f"services {volumes[source]} and {name} share the state volume {source}"
        )
        volumes[source] = name
        assert env.get("AIGW_NODE_TOKEN") and env["AIGW_NODE_TOKEN"].split(":")[0] == (
            cp_env.get("AIGW_NODE_TOKEN", "").split(":")[0]
        ), f"service {name}: AIGW_NODE_TOKEN is not the control plane's"
        test = " ".join(str(t) for t in (svc.get("healthcheck") or {}).get("test", []))
        listen_port = port_of(env.get("AIGW_LISTEN", LISTEN_VAR["data-plane"][1]))
        assert f":{listen_port}/readyz" in test, (
            f"service {name}: health check {test!r} is not /readyz on port {listen_port}"
        )


def check_image_has_binaries(doc: Compose) -> None:
    """The Dockerfile the services build puts every binary they run in the image."""
    for name, svc in doc["services"].items():
        if "build" not in svc:
            continue
        build = svc["build"]
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        path = context / dockerfile
        assert path.is_file(), f"service {name} builds {path}, which does not exist"
        text = path.read_text()
        for b in BINARIES:
            assert f"target/release/{b}" in text, f"{path} does not copy {b} into the image"


CHECKS: list[Callable[[Compose], None]] = [
    check_commands,
    check_env_documented,
    check_control_plane_address,
    check_default_ports,
    check_data_planes,
    check_image_has_binaries,
    check_nothing_else_published,
    check_redis_per_region,
]


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_compose_file(check: Callable[[Compose], None]) -> None:
    check(load())


def _first(doc: Compose, binary_name: str) -> dict[str, Any]:
    return next(iter(services_running(doc, binary_name).values()))


def _break_env_typo(doc: Compose) -> None:
    _first(doc, "data-plane")["environment"]["AIGW_NODEID"] = "dp-x"


def _break_env_wrong_binary(doc: Compose) -> None:
    # A real control-plane setting, given to the data plane.
    _first(doc, "data-plane")["environment"]["AIGW_ADMIN_PASSWORD"] = "x"


def _break_otel_on_admin_web(doc: Compose) -> None:
    # Only the data planes export spans: admin-web would ignore it.
    _first(doc, "admin-web")["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://c:4317"


def _break_command(doc: Compose) -> None:
    _first(doc, "admin-web")["command"] = ["admin-ui"]


def _break_cp_url(doc: Compose) -> None:
    _first(doc, "data-plane")["environment"]["AIGW_CONTROL_PLANE"] = "http://localhost:50051"


def _break_plaintext(doc: Compose) -> None:
    _first(doc, "data-plane")["environment"]["AIGW_CONTROL_PLANE"] = "http://control-plane:50051"


def _break_no_client_ca(doc: Compose) -> None:
    del _first(doc, "control-plane")["environment"]["AIGW_TLS_CLIENT_CA"]


def _break_cp_published(doc: Compose) -> None:
    _first(doc, "control-plane")["ports"] = ["50051:50051"]


def _break_redis_published(doc: Compose) -> None:
    doc["services"]["redis-eu"]["ports"] = ["6379:6379"]


def _break_shared_redis(doc: Compose) -> None:
    for svc in services_running(doc, "data-plane").values():
        svc["environment"]["REDIS_URL"] = "redis://redis-eu:6379"


def _break_port(doc: Compose) -> None:
    _first(doc, "admin-web")["ports"] = ["9091:9090"]


def _break_listen_loopback(doc: Compose) -> None:
    for svc in services_running(doc, "data-plane").values():
        svc["environment"]["AIGW_LISTEN"] = "127.0.0.1:8080"


def _break_node_id(doc: Compose) -> None:
    for svc in services_running(doc, "data-plane").values():
        svc["environment"]["AIGW_NODE_ID"] = "dp-1"


def _break_state_volume(doc: Compose) -> None:
    _first(doc, "data-plane")["volumes"] = []


def _break_no_healthcheck(doc: Compose) -> None:
    del _first(doc, "data-plane")["healthcheck"]


@pytest.mark.parametrize(
    "breakage, check",
    [
        (_break_env_typo, check_env_documented),
        (_break_env_wrong_binary, check_env_documented),
        (_break_otel_on_admin_web, check_env_documented),
        (_break_command, check_commands),
        (_break_cp_url, check_control_plane_address),
        (_break_plaintext, check_control_plane_address),
        (_break_no_client_ca, check_control_plane_address),
        (_break_cp_published, check_nothing_else_published),
        (_break_redis_published, check_nothing_else_published),
        (_break_shared_redis, check_redis_per_region),
        (_break_port, check_default_ports),
        (_break_listen_loopback, check_default_ports),
        (_break_node_id, check_data_planes),
        (_break_state_volume, check_data_planes),
        (_break_no_healthcheck, check_data_planes),
    ],
    ids=lambda v: v.__name__.removeprefix("_break_") if callable(v) else None,
)
def test_checks_catch_a_broken_file(
    breakage: Callable[[Compose], None], check: Callable[[Compose], None]
) -> None:
    """Each check fails on a copy of the file broken the way it guards against."""
    doc = copy.deepcopy(load())
    breakage(doc)
    with pytest.raises(AssertionError):
        check(doc)
