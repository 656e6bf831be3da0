"""The e2e harness: the real binaries on free loopback ports, their database,
the mock provider's record, and an `eventually` helper for convergence.

Nothing here sleeps a fixed time to wait for something to happen: every wait
polls a condition until a deadline.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("AIGW_BIN_DIR") or REPO / "target" / "debug")

START_TIMEOUT = float(os.environ.get("AIGW_E2E_START_TIMEOUT", "30"))
CONVERGE_TIMEOUT = float(os.environ.get("AIGW_E2E_CONVERGE_TIMEOUT", "30"))
HTTP_TIMEOUT = 30.0

# What the tests configure.
POOL_SECRET = "sk-pool-secret-123"
MODEL = "gpt-4o-mini"
# USD per million tokens.
PRICE_INPUT = 2.5
PRICE_OUTPUT = 10.0
PRICE_CACHED_INPUT = 1.25

# Environment the binaries must not inherit from the developer's shell.
_SCRUBBED_ENV = re.compile(r"^(AIGW_|DATABASE_URL$|REDIS_URL$|MOCK_)")

T = TypeVar("T")

LISTENING = re.compile(r"^(\S+) listening on (\S+)\s*$")


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for a process that must come
    back on the same port after a restart)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(fn: Callable[[], T], timeout: float = CONVERGE_TIMEOUT, what: str = "") -> T:
    """Calls `fn` until it returns without raising, and returns its result.

    `fn` states its condition with `assert`, or returns a bool: `False`
    counts as "not yet" (a condition written as an expression must not pass
    by being returned). Any exception counts as "not yet" too (a connection
    refused, a table not created yet, ...); when the deadline passes, the
    last one is raised.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            result = fn()
            if result is False:
                raise AssertionError("still false")
            return result
        except Exception as e:  # noqa: BLE001 - retried, re-raised at the deadline
            if time.monotonic() + delay > deadline:
                raise AssertionError(
                    f"not true after {timeout:.0f}s{': ' + what if what else ''}: {e!r}"
                ) from e
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not path.exists():
        raise AssertionError(
            f"{path} does not exist: build with `cargo build --workspace` "
            "(or point AIGW_BIN_DIR at the binaries)"
        )
    return path


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SCRUBBED_ENV.match(k)}
    env.setdefault("RUST_LOG", "info")
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


# Every process started, so a failing test can show their logs.
ALL_PROCS: list["Proc"] = []
# More logs a failing test shows: callables returning (title, text) pairs
# (processes started outside `Proc`, such as the namespace topology's).
LOG_SOURCES: list[Callable[[], list[tuple[str, str]]]] = []


@atexit.register
def _kill_leftovers() -> None:
    """Safety net: no process outlives the test run."""
    for proc in ALL_PROCS:
        if proc.alive:
            proc.popen.kill()


class Proc:
    """One of our binaries, started with stdout read line by line (for its
    `... listening on ADDR` line) and stderr (its logs) in a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.lines: list[str] = []
        self._cond = threading.Condition()
        log_dir.mkdir(parents=True, exist_ok=True)
        n = sum(1 for p in ALL_PROCS if p.name == name)
        self.log_path = log_dir / f"{name}.{n}.log"
        self.started_at = time.time()
        self.exited_at: float | None = None
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [str(binary(name)), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        ALL_PROCS.append(self)
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first stdout line matching `pattern`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    m = pattern.match(line)
                    if m:
                        return m
                seen = len(self.lines)
                if self.popen.poll() is not None and seen == len(self.lines):
                    raise AssertionError(
                        f"{self.name} exited with {self.popen.returncode} before printing "
                        f"{pattern.pattern!r}; stdout {self.lines!r}\n{self.log_tail()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name} printed no line matching {pattern.pattern!r} in {timeout}s; "
                        f"stdout {self.lines!r}\n{self.log_tail()}"
                    )
                self._cond.wait(min(left, 0.2))

    def listening_addr(self) -> str:
        """Waits for `NAME listening on ADDR` and returns ADDR."""
        m = self.wait_line(LISTENING)
        assert m.group(1) == self.name, f"unexpected startup line {m.group(0)!r}"
        return m.group(2)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Sends `sig` and waits for the exit (SIGKILL past `timeout`)."""
        if self.alive:
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        if self.exited_at is None:
            self.exited_at = time.time()
        return self.popen.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def log_tail(self, n: int = 60) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return f"--- {self.name}: no log"
        return f"--- {self.name} log ({self.log_path}), last {n} lines:\n" + "\n".join(text[-n:])


# ---------------------------------------------------------------- mock

class Mock:
    """The mock provider and its test controls."""

    def __init__(self, log_dir: Path, fast: bool = False):
        args = ["--listen", "127.0.0.1:0"] + (["--fast"] if fast else [])
        self.proc = Proc("mock-provider", args, clean_env(), log_dir)
        self.addr = self.proc.listening_addr()
        self.url = f"http://{self.addr}"
        self.http = httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT)

    def all_requests(self) -> list[dict[str, Any]]:
        """Everything the mock received, the control plane's health checks
        included."""
        r = self.http.get("/_mock/requests")
        r.raise_for_status()
        return r.json()

    def requests(self) -> list[dict[str, Any]]:
        """What the data planes sent for apps (health checks left out)."""
        return [r for r in self.all_requests() if not is_health_check(r)]

    def health_checks(self) -> list[dict[str, Any]]:
        """The control plane's health checks (model listings)."""
        return [r for r in self.all_requests() if is_health_check(r)]

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["path"] == "/v1/chat/completions"]

    def provider_requests(self) -> list[dict[str, Any]]:
        """The POSTs it received (model lists left out)."""
        return [r for r in self.requests() if r["method"] == "POST"]

    def clear(self) -> None:
        self.http.delete("/_mock/requests").raise_for_status()

    def add_fault(self, **fault: Any) -> None:
        self.http.post("/_mock/faults", json=fault).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_mock/faults").raise_for_status()

    def set_key_state(self, key: str, state: str) -> None:
        """How the provider's account system sees `key` from now on:
        valid, revoked, out_of_quota or down (every endpoint, model lists too)."""
        self.http.post("/_mock/keys", json={"key": key, "state": state}).raise_for_status()

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


def is_health_check(rec: dict[str, Any]) -> bool:
    return rec.get("headers", {}).get("user-agent", "").startswith("aigw-health/")


# ---------------------------------------------------------------- database

TRACE_COLUMNS = (
    "request_id, client_key_name, model, provider, provider_key, status, "
    "input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost, stream, "
    "endpoint, api_format, error, node_id, region"
)


class Database:
    """Read access to the control plane's database, as the tests see it."""

    def __init__(self, kind: str, url: str, sqlite_path: Path | None = None):
        self.kind = kind
        self.url = url
        self.sqlite_path = sqlite_path

    def rows(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if self.kind == "sqlite":
            assert self.sqlite_path is not None
            if not self.sqlite_path.exists():
                raise AssertionError(f"{self.sqlite_path} does not exist yet")
            conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=10)
            try:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql, params).fetchall()]
            finally:
                conn.close()
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql.replace("?", "%s"), params).fetchall())

    def traces(self) -> list[dict[str, Any]]:
        rows = self.rows(f"SELECT {TRACE_COLUMNS} FROM traces ORDER BY started_at_ms")
        for r in rows:
            r["stream"] = bool(r["stream"])
        return rows

    def trace_count(self, request_id: str | None = None) -> int:
        if request_id is None:
            [row] = self.rows("SELECT COUNT(*) AS n FROM traces")
        else:
            [row] = self.rows("SELECT COUNT(*) AS n FROM traces WHERE request_id = ?", (request_id,))
        return int(row["n"])

    def trace(self, request_id: str) -> dict[str, Any] | None:
        rows = self.rows(f"SELECT {TRACE_COLUMNS} FROM traces WHERE request_id = ?", (request_id,))
        assert len(rows) <= 1, f"{len(rows)} trace rows for {request_id}"
        if not rows:
            return None
        rows[0]["stream"] = bool(rows[0]["stream"])
        return rows[0]


def postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    """Creates a fresh database in the test cluster; returns its URL and a
    function that drops it."""
    import psycopg

    name = "aigw_e2e_" + secrets.token_hex(6)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


# ---------------------------------------------------------------- expectations

def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if p.get("type") == "text")
    return ""


@dataclass
class Expected:
    """What the mock answers to a conversation (its documented rules)."""

    reply: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int

    @classmethod
    def for_messages(cls, messages: list[dict[str, Any]]) -> "Expected":
        users = [m for m in messages if m["role"] == "user"]
        reply = "mock reply: " + (message_text(users[-1]["content"]) if users else "")
        words = lambda s: len(s.split())  # noqa: E731
        return cls(
            reply=reply,
            prompt_tokens=sum(words(message_text(m.get("content"))) for m in messages),
            cached_tokens=sum(
                words(message_text(m.get("content")))
                for m in messages
                if m["role"] in ("system", "developer")
            ),
            completion_tokens=words(reply),
        )

    @property
    def cost(self) -> float:
        """USD, with the pricing the tests apply."""
        return (
            (self.prompt_tokens - self.cached_tokens) * PRICE_INPUT
            + self.cached_tokens * PRICE_CACHED_INPUT
            + self.completion_tokens * PRICE_OUTPUT
        ) / 1e6

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cached_tokens": self.cached_tokens,
        }


def normalized_usage(usage: dict[str, Any]) -> dict[str, int]:
    """Any format's usage object (as the mock reported it) as
    `{input (cached included), cached, output}`."""
    if "promptTokenCount" in usage:  # Gemini usageMetadata
        return {"input": usage["promptTokenCount"],
                "cached": usage.get("cachedContentTokenCount", 0),
                "output": usage.get("candidatesTokenCount", 0)}
    if "prompt_tokens" in usage:  # OpenAI chat, embeddings
        details = usage.get("prompt_tokens_details") or {}
        return {"input": usage["prompt_tokens"], "cached": details.get("cached_tokens", 0),
                "output": usage.get("completion_tokens", 0)}
    if "input_tokens_details" in usage:  # OpenAI Responses
        return {"input": usage["input_tokens"],
                "cached": usage["input_tokens_details"].get("cached_tokens", 0),
                "output": usage["output_tokens"]}
    # Anthropic: input_tokens excludes what was read from or written to the cache.
    cached = usage.get("cache_read_input_tokens") or 0
    return {"input": usage["input_tokens"] + cached + (usage.get("cache_creation_input_tokens") or 0),
            "cached": cached, "output": usage["output_tokens"]}


def usage_summary(usage: dict[str, Any]) -> dict[str, Any]:
    """The mock's usage object reduced to what `Expected.usage` holds."""
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
    }


def assert_trace_matches(trace: dict[str, Any], exp: Expected, *, stream: bool,
                         client_key: str = "app", provider: str = "mock") -> None:
    got = {k: trace[k] for k in ("input_tokens", "output_tokens", "cached_tokens", "status",
                                 "stream", "model", "client_key_name", "provider")}
    want = {
        "input_tokens": exp.prompt_tokens,
        "output_tokens": exp.completion_tokens,
        "cached_tokens": exp.cached_tokens,
        "status": 200,
        "stream": stream,
        "model": MODEL,
        "client_key_name": client_key,
        "provider": provider,
    }
    assert got == want, f"trace {trace['request_id']}"
    assert trace["cost"] is not None and abs(trace["cost"] - exp.cost) <= 1e-12 + 1e-9 * exp.cost, (
        f"cost {trace['cost']!r} != expected {exp.cost!r}"
    )
    assert trace["error"] is None, trace["error"]


# ---------------------------------------------------------------- the gateway

def gateway_config(mock_url: str, *, client_keys: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The declarative config the tests apply: the mock as an
    openai-compatible provider with one pool key, a price, a client key."""
    return {
        "providers": [{
            "name": "mock",
            "kind": "openai-compatible",
            "base_url": mock_url,
            "models": ["gpt-4o*", "mock-*"],
            "strategy": "round-robin",
            "keys": [{"name": "pool-a", "secret": "${E2E_POOL_SECRET}", "weight": 1}],
        }],
        "pricing": [{
            "model": MODEL,
            "input": PRICE_INPUT,
            "output": PRICE_OUTPUT,
            "cached_input": PRICE_CACHED_INPUT,
        }],
        "client_keys": client_keys if client_keys is not None else [
            {"name": "app", "key": "${E2E_APP_KEY}"},
        ],
    }


@dataclass
class ApplyResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line.strip() for line in self.stdout.splitlines() if line.strip()]


@dataclass
class Gateway:
    """Control plane + data plane(s) + mock, with one database."""

    workdir: Path
    db: Database
    mock: Mock
    master_key: str = field(default_factory=lambda: secrets.token_hex(32))
    admin_token: str = field(default_factory=lambda: "adm-" + secrets.token_hex(16))
    node_token: str = field(default_factory=lambda: "node-" + secrets.token_hex(16))
    app_key: str = field(default_factory=lambda: "sk-aigw-e2e" + secrets.token_hex(16))
    # The first user `admin`'s password (set at the control plane's first start).
    admin_password: str = field(default_factory=lambda: "e2e-" + secrets.token_hex(8))
    cp_port: int = field(default_factory=free_port)
    cp: Proc | None = None
    dp: Proc | None = None
    dp_url: str = ""
    dp_env: dict[str, str] = field(default_factory=dict)
    # Extra control-plane variables (kept for restarts); "" unsets one.
    cp_env: dict[str, str] = field(default_factory=dict)
    _genai: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def cp_url(self) -> str:
        """The control plane's URL; https:// (with the name its test
        certificate has) once AIGW_TLS_CERT is in `cp_env`."""
        if self.cp_env.get("AIGW_TLS_CERT"):
            return f"https://localhost:{self.cp_port}"
        return f"http://127.0.0.1:{self.cp_port}"

    # -- control plane

    def start_control_plane(self) -> Proc:
        """Starts the control plane on its port (the same one every time)."""
        assert self.cp is None or not self.cp.alive, "control plane already running"
        env = clean_env({
            "DATABASE_URL": self.db.url,
            "AIGW_GRPC_ADDR": f"127.0.0.1:{self.cp_port}",
            "AIGW_ADMIN_TOKEN": self.admin_token,
            "AIGW_MASTER_KEY": self.master_key,
            "AIGW_NODE_TOKEN": self.node_token,
            "AIGW_ADMIN_PASSWORD": self.admin_password,
        })
        env.update(self.cp_env)
        env = {k: v for k, v in env.items() if v != ""}

        # A restart may race the release of the old socket: retry only that.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            proc = Proc("control-plane", ["serve"], env, self.log_dir)
            try:
                addr = proc.listening_addr()
                break
            except AssertionError:
                proc.stop()
                if "in use" not in proc.log_tail() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert addr == f"127.0.0.1:{self.cp_port}", addr
        self.cp = proc
        return proc

    def stop_control_plane(self, sig: int = signal.SIGTERM) -> None:
        assert self.cp is not None
        self.cp.stop(sig)

    def apply(self, config: dict[str, Any] | str, *, env: dict[str, str] | None = None,
              prune: bool = False, admin_token: str | None = None) -> ApplyResult:
        """Runs `control-plane apply -f FILE`."""
        path = self.workdir / f"config-{secrets.token_hex(4)}.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
        run_env = clean_env({
            "AIGW_CONTROL_PLANE": self.cp_url,
            "AIGW_ADMIN_TOKEN": admin_token if admin_token is not None else self.admin_token,
            "E2E_POOL_SECRET": POOL_SECRET,
            "E2E_APP_KEY": self.app_key,
            **(env or {}),
        })
        args = [str(binary("control-plane")), "apply", "-f", str(path)] + (["--prune"] if prune else [])
        p = subprocess.run(args, env=run_env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        return ApplyResult(p.returncode, p.stdout, p.stderr)

    def apply_ok(self, config: dict[str, Any] | str, **kw: Any) -> ApplyResult:
        r = self.apply(config, **kw)
        assert r.returncode == 0, f"apply failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r

    # -- data plane

    def start_data_plane(self, *, wait_ready: bool = True, **env: str) -> Proc:
        """Starts a data plane on a free port with this gateway's state dir;
        `env` adds variables (kept for restarts)."""
        assert self.dp is None or not self.dp.alive, "data plane already running"
        self.dp_env.update(env)
        full_env = clean_env({
            "AIGW_LISTEN": "127.0.0.1:0",
            "AIGW_CONTROL_PLANE": self.cp_url,
            "AIGW_NODE_TOKEN": self.node_token,
            "AIGW_STATE_DIR": str(self.workdir / "dp-state"),
            "AIGW_NODE_ID": "e2e-dp-1",
            "AIGW_REGION": "e2e",
            **self.dp_env,
        })
        self.dp = Proc("data-plane", [], full_env, self.log_dir)
        self.dp_url = f"http://{self.dp.listening_addr()}"
        if wait_ready:
            self.wait_ready()
        return self.dp

    def extra_data_plane(self, node_id: str, **env: str) -> tuple[Proc, str]:
        """Another data plane (not `self.dp`) with its own state dir and id,
        on the join token; `dp_env` applies to it too, `env` last ("" unsets
        a variable). Returns it and its URL (not waited on)."""
        full_env = clean_env({
            "AIGW_LISTEN": "127.0.0.1:0",
            "AIGW_CONTROL_PLANE": self.cp_url,
            **self.dp_env,
            # Its own identity, on the join token, whatever `self.dp` uses.
            "AIGW_NODE_TOKEN": self.node_token,
            "AIGW_STATE_DIR": str(self.workdir / f"dp-state-{node_id}"),
            "AIGW_NODE_ID": node_id,
            "AIGW_REGION": "e2e",
            **env,
        })
        full_env = {k: v for k, v in full_env.items() if v != ""}  # "" unsets
        proc = Proc("data-plane", [], full_env, self.log_dir)
        return proc, f"http://{proc.listening_addr()}"

    def wait_ready(self) -> None:
        def ready() -> None:
            assert self.dp is not None and self.dp.alive, "data plane exited"
            r = httpx.get(self.dp_url + "/readyz", timeout=5)
            assert r.status_code == 200, f"/readyz {r.status_code}"

        eventually(ready, timeout=START_TIMEOUT, what="data plane ready")

    def wait_key_known(self, key: str | None = None) -> None:
        """Waits until the data plane's snapshot knows the client key (so the
        config applied before it is in force)."""
        key = key or self.app_key

        def known() -> None:
            r = httpx.get(self.dp_url + "/v1/models", headers={"authorization": f"Bearer {key}"},
                          timeout=5)
            assert r.status_code == 200, f"/v1/models {r.status_code} {r.text[:200]}"

        eventually(known, what="client key known to the data plane")

    def client(self, api_key: str | None = None) -> openai.OpenAI:
        """The official SDK pointed at the data plane (no retries: the tests
        must see what a single call does)."""
        return openai.OpenAI(base_url=self.dp_url + "/v1", api_key=api_key or self.app_key,
                             max_retries=0, timeout=HTTP_TIMEOUT)

    def anthropic_client(self, api_key: str | None = None) -> "anthropic.Anthropic":
        """The official `anthropic` SDK pointed at the data plane, no retries."""
        import anthropic

        return anthropic.Anthropic(base_url=self.dp_url, api_key=api_key or self.app_key,
                                   max_retries=0, timeout=HTTP_TIMEOUT)

    def genai_client(self, api_key: str | None = None) -> "genai.Client":
        """The official `google-genai` SDK pointed at the data plane (it
        calls `/v1/models/...` by default, `/v1beta/` with api_version).
        Kept: a `genai.Client` closes its connections when collected, even
        while `client.models` is in use."""
        key = (self.dp_url, api_key or self.app_key)
        if key not in self._genai:
            self._genai[key] = genai_client(*key)
        return self._genai[key]

    # -- traces

    def wait_traces(self, request_ids: list[str]) -> list[dict[str, Any]]:
        """Waits until every request has its trace row; returns them in order."""
        def all_there() -> list[dict[str, Any]]:
            rows = {rid: self.db.trace(rid) for rid in request_ids}
            missing = [rid for rid, row in rows.items() if row is None]
            assert not missing, f"no trace yet for {missing}"
            return [rows[rid] for rid in request_ids]  # type: ignore[misc]

        return eventually(all_there, what="traces stored")

    # -- teardown

    def stop_all(self) -> None:
        for proc in (self.dp, self.cp):
            if proc is not None:
                proc.stop()
        self.mock.stop()


def start_gateway(workdir: Path, db: Database) -> Gateway:
    """Mock + control plane started; nothing applied, no data plane yet."""
    workdir.mkdir(parents=True, exist_ok=True)
    mock = Mock(workdir / "logs")
    gw = Gateway(workdir=workdir, db=db, mock=mock)
    try:
        gw.start_control_plane()
    except BaseException:
        gw.stop_all()
        raise
    return gw


def genai_client(base_url: str, api_key: str, api_version: str | None = None) -> "genai.Client":
    """A `google-genai` client for a local server. It does not retry unless
    told to."""
    from google import genai
    from google.genai import types

    opts = types.HttpOptions(base_url=base_url, timeout=int(HTTP_TIMEOUT * 1000))
    if api_version is not None:
        opts.api_version = api_version
    return genai.Client(api_key=api_key, http_options=opts)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
