"""Fixtures: a fresh database per test (SQLite, and Postgres when a test
cluster is given), the mock provider, the control plane and data plane."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness import ALL_PROCS, Database, Gateway, Mock, eventually, free_port, postgres_database, start_gateway

PG_URL_ENV = "AIGW_TEST_PG_URL"


def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.time()


_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On failure, attach the logs of the processes involved."""
    report = yield
    if report.failed:
        started = item.stash.get(_STARTED, 0.0)
        for proc in ALL_PROCS:
            if proc.alive or (proc.exited_at or 0) >= started:
                report.sections.append((f"{proc.name} log", proc.log_tail(80)))
    return report


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database the control plane runs on. Tests that need only one
    backend parametrize `backend` themselves."""
    return request.param


def _make_db(kind: str, workdir: Path) -> tuple[Database, object]:
    if kind == "sqlite":
        path = workdir / "db" / "aigw.db"
        return Database("sqlite", f"sqlite://{path}", sqlite_path=path), None
    admin_url = os.environ.get(PG_URL_ENV)
    if not admin_url:
        if os.environ.get("AIGW_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"{PG_URL_ENV} is not set but AIGW_TEST_REQUIRE_PG=1")
        pytest.skip(
            f"Postgres variant: {PG_URL_ENV} is not set (e2e/run-tests.sh starts a "
            "throwaway cluster and sets it)"
        )
    url, drop = postgres_database(admin_url)
    return Database("postgres", url), drop


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Database]:
    database, drop = _make_db(backend, tmp_path)
    yield database
    if drop is not None:
        drop()  # type: ignore[operator]


@pytest.fixture
def stack(db: Database, tmp_path: Path) -> Iterator[Gateway]:
    """Mock + control plane running; nothing applied, no data plane."""
    gw = start_gateway(tmp_path / "gw", db)
    yield gw
    gw.stop_all()


@pytest.fixture
def gw(stack: Gateway) -> Gateway:
    """The spine ready to serve: config applied (mock provider with the pool
    key, pricing, client key `app`), data plane ready and knowing the key."""
    from harness import gateway_config

    stack.apply_ok(gateway_config(stack.mock.url))
    stack.start_data_plane()
    stack.wait_key_known()
    stack.mock.clear()
    return stack


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """grpcio stubs of the Admin API and the planes' protocols."""
    from admin_client import generate_stubs

    yield from generate_stubs(tmp_path_factory.mktemp("stubs"))


@pytest.fixture
def channel(stack: Gateway) -> Iterator[object]:
    """A plaintext gRPC channel to the stack's control plane."""
    import grpc

    ch = grpc.insecure_channel(stack.cp_url.removeprefix("http://"))
    yield ch
    ch.close()


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[Mock]:
    """The mock provider alone."""
    m = Mock(tmp_path / "logs")
    yield m
    m.stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """A real Redis on a free loopback port, nothing persisted."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pong() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16).startswith(b"+PONG")

    eventually(pong, what="redis up")
    yield f"redis://127.0.0.1:{port}", proc
    proc.kill()
    proc.wait(timeout=10)


