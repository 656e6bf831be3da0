"""The clients people point at a gateway, for real, through ours: the coding
CLIs (Claude Code, Codex CLI, Gemini CLI, from npm) and the official
TypeScript SDKs (openai, @anthropic-ai/sdk, @google/genai).

Each CLI runs a one-shot task routed to its own provider kind and
translated to others: the mock is told (`mock-tool: NAME {args}`, see
e2e/src/tokens.rs) to call one of the CLI's own tools to read a file holding
a fresh nonce, the CLI runs the tool, sends the result back, and prints the
mock's answer, which quotes it. Then every model call the CLI made has
exactly one trace, with the usage the mock reported. The CLIs run with a
throwaway HOME, their telemetry and update checks off, and only the gateway
on loopback to talk to.

The SDK matrix (e2e/clients/sdk.test.mjs, node's test runner) covers every
SDK × every provider kind × plain, streaming and tools, and is held to the
same one-trace-per-call rule.

The dropped-field policy, both ways: fields the target's format lacks that are
hints or client bookkeeping are dropped and named (`x-aigw-dropped-fields`,
the trace); a strict route refuses them, naming the field, and a CLI on such a
route stops with that error instead of hanging.

e2e/run-tests.sh installs e2e/clients with `npm ci`; without it these tests
fail (they never skip).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import REPO, Database, Gateway, eventually, normalized_usage, start_gateway

CLIENTS = REPO / "e2e" / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
CLI_TIMEOUT = 180

# One provider of each kind, all pointing at the mock.
PROVIDERS = [
    ("p-anthropic", "anthropic", ["claude-*"]),
    ("p-openai", "openai", ["gpt-*"]),
    ("p-gemini", "gemini", ["gemini-*"]),
    ("p-compat", "openai-compatible", ["compat-*"]),
]
# Model aliases: the names a CLI is pointed at, served as a routed model of
# another kind. `gemini-via-compat` shows an alias winning over the
# provider glob `gemini-*` it also matches.
ROUTES = [
    {"model": "cc-via-openai", "alias_of": "gpt-4o-mini"},
    {"model": "codex-via-anthropic", "alias_of": "claude-sonnet-4-5"},
    {"model": "gemini-via-compat", "alias_of": "compat-model"},
    # The pairs whose schemas and ids differ most: Claude Code's and Codex's
    # tools to Gemini, Gemini CLI's to Anthropic.
    {"model": "cc-via-gemini", "alias_of": "gemini-2.5-flash"},
    {"model": "codex-via-gemini", "alias_of": "gemini-2.5-flash"},
    {"model": "gemini-via-anthropic", "alias_of": "claude-sonnet-4-5"},
    {"model": "strict-via-openai", "alias_of": "gpt-4o-mini", "strict": True},
]
KEYS = ["sdk", "codex-builtin", "claude-own", "claude-translated", "codex-own", "codex-translated",
        "gemini-own", "gemini-translated", "claude-to-gemini", "codex-to-gemini",
        "gemini-to-anthropic", "claude-strict", "policy"]
SDK_MODELS = {"openai": "gpt-4o-mini", "openai-compatible": "compat-model",
              "anthropic": "claude-sdk", "gemini": "gemini-sdk"}


def key_env(name: str) -> str:
    return "E2E_KEY_" + name.upper().replace("-", "_")


@pytest.fixture(scope="module")
def cgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, dict[str, str]]]:
    if not (NODE_BIN / "claude").exists():
        pytest.fail(f"{CLIENTS}/node_modules is missing: run `npm ci` there (e2e/run-tests.sh does)")
    workdir: Path = tmp_path_factory.mktemp("clients")
    path = workdir / "db" / "aigw.db"
    gw = start_gateway(workdir / "gw", Database("sqlite", f"sqlite://{path}", sqlite_path=path))
    keys = {k: "sk-aigw-" + k + "-" + secrets.token_hex(12) for k in KEYS}
    config = {
        "providers": [{
            "name": name, "kind": kind, "base_url": gw.mock.url, "models": globs,
            "keys": [{"name": f"{name}-key", "secret": f"secret-{name}"}],
        } for name, kind, globs in PROVIDERS],
        "routes": ROUTES,
        "client_keys": [{"name": k, "key": "${" + key_env(k) + "}"} for k in KEYS],
    }
    try:
        gw.apply_ok(config, env={key_env(k): v for k, v in keys.items()})
        gw.start_data_plane()
        gw.wait_key_known(keys["sdk"])
        yield gw, keys
    finally:
        gw.stop_all()


# ---------------------------------------------------------------- traces

def traces_of(gw: Gateway, key_name: str) -> list[dict[str, Any]]:
    return gw.db.rows(
        "SELECT request_id, model, provider, status, input_tokens, cached_tokens, output_tokens, "
        "error, dropped_fields FROM traces WHERE client_key_name = ? ORDER BY started_at_ms",
        (key_name,),
    )


def assert_one_trace_per_call(gw: Gateway, key_name: str) -> list[dict[str, Any]]:
    """Every model call that reached the mock since it was cleared has one
    trace under `key_name`, with the usage the mock reported, and nothing
    else was traced (no refused or failed call)."""
    calls = [r for r in gw.mock.provider_requests() if r["response_status"] == 200]
    assert calls, "the client made no model call"
    want = Counter(
        tuple(normalized_usage(r["response_usage"]).values()) for r in calls
    )

    def traced() -> list[dict[str, Any]]:
        rows = traces_of(gw, key_name)
        assert len(rows) >= len(calls), f"{len(rows)} traces for {len(calls)} model calls"
        return rows

    rows = eventually(traced, what=f"traces of {key_name}")
    assert [(r["status"], r["error"]) for r in rows] == [(200, None)] * len(calls), rows
    got = Counter((r["input_tokens"], r["cached_tokens"], r["output_tokens"]) for r in rows)
    assert got == want, f"trace usage {got} != mock usage {want}"
    return rows


# ---------------------------------------------------------------- the CLIs

def base_env(home: Path) -> dict[str, str]:
    """What every CLI gets: node on PATH, a fresh HOME, no proxy, no colour.
    Nothing from the developer's environment (keys, config) leaks in."""
    home.mkdir(parents=True, exist_ok=True)
    node_dir = str(Path(os.path.realpath(subprocess.run(
        ["bash", "-c", "command -v node"], capture_output=True, text=True, check=True
    ).stdout.strip())).parent)
    return {
        "PATH": f"{NODE_BIN}:{node_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "CI": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def claude(gw: Gateway, key: str, model: str, prompt: str, tmp: Path) -> dict[str, Any]:
    env = base_env(tmp / "home") | {
        "ANTHROPIC_BASE_URL": gw.dp_url,
        "ANTHROPIC_API_KEY": key,
        # Side calls (titles, summaries) go to the same route.
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
    }
    p = run([str(NODE_BIN / "claude"), "-p", prompt, "--model", model, "--output-format", "json"],
            env, tmp)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"claude printed no JSON ({p.returncode}):\n{p.stdout}\n{p.stderr}") from e


def codex(gw: Gateway, key: str, model: str, prompt: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    home = tmp / "home"
    env = base_env(home) | {"CODEX_HOME": str(home / ".codex"), "AIGW_KEY": key}
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    # A custom model provider: the gateway's Responses endpoint, streaming.
    config = [
        "model_provider=aigw",
        'model_providers.aigw.name="aigw"',
        f'model_providers.aigw.base_url="{gw.dp_url}/v1"',
        'model_providers.aigw.env_key="AIGW_KEY"',
        'model_providers.aigw.wire_api="responses"',
        "model_providers.aigw.request_max_retries=0",
        "model_providers.aigw.stream_max_retries=0",
        "analytics.enabled=false",
        "check_for_update_on_startup=false",
    ]
    args = [str(NODE_BIN / "codex"), "exec", "--skip-git-repo-check", "-m", model]
    for c in config:
        args += ["-c", c]
    return run(args + [prompt], env, tmp)


def codex_builtin(gw: Gateway, key: str, model: str, prompt: str,
                  tmp: Path) -> subprocess.CompletedProcess[str]:
    """Codex with its built-in OpenAI provider, as most people run it: only
    the base URL (`openai_base_url`; this version ignores `OPENAI_BASE_URL`)
    and the key changed. This provider opens a WebSocket at `/v1/responses`
    before any HTTP request."""
    home = tmp / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    env = base_env(home) | {"CODEX_HOME": str(home / ".codex"), "CODEX_API_KEY": key}
    args = [str(NODE_BIN / "codex"), "exec", "--skip-git-repo-check", "-m", model,
            "-c", f'openai_base_url="{gw.dp_url}/v1"',
            "-c", "analytics.enabled=false", "-c", "check_for_update_on_startup=false"]
    return run(args + [prompt], env, tmp)


def gemini(gw: Gateway, key: str, model: str, prompt: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    home = tmp / "home"
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "security": {"auth": {"selectedType": "gemini-api-key"}},
    }))
    env = base_env(home) | {
        "GEMINI_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": gw.dp_url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    return run([str(NODE_BIN / "gemini"), "-m", model, "-p", prompt], env, tmp)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{args[0]} hung for {CLI_TIMEOUT}s:\n{e.stdout}\n{e.stderr}") from e


def task(tmp: Path) -> tuple[str, Path]:
    """A file holding a fresh nonce, in the CLI's working directory."""
    tmp.mkdir(parents=True, exist_ok=True)
    nonce = "nonce-" + secrets.token_hex(6)
    f = tmp / "answer.txt"
    f.write_text(f"the secret word is {nonce}\n")
    return nonce, f


# (case, CLI, model, provider the call must reach, its tool and arguments)
CLI_CASES = [
    ("claude-own", "claude", "claude-sonnet-4-5", "p-anthropic", "Read", "file_path"),
    ("claude-translated", "claude", "cc-via-openai", "p-openai", "Read", "file_path"),
    ("codex-own", "codex", "gpt-5-codex", "p-openai", "exec_command", "cmd"),
    ("codex-translated", "codex", "codex-via-anthropic", "p-anthropic", "exec_command", "cmd"),
    ("gemini-own", "gemini", "gemini-2.5-flash", "p-gemini", "read_file", "file_path"),
    ("gemini-translated", "gemini", "gemini-via-compat", "p-compat", "read_file", "file_path"),
    ("claude-to-gemini", "claude", "cc-via-gemini", "p-gemini", "Read", "file_path"),
    ("codex-to-gemini", "codex", "codex-via-gemini", "p-gemini", "exec_command", "cmd"),
    ("gemini-to-anthropic", "gemini", "gemini-via-anthropic", "p-anthropic", "read_file", "file_path"),
]


@pytest.mark.parametrize("case,cli,model,provider,tool,arg", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_completes_a_tool_task(cgw: tuple[Gateway, dict[str, str]], tmp_path: Path, case: str,
                                   cli: str, model: str, provider: str, tool: str, arg: str) -> None:
    gw, keys = cgw
    gw.mock.clear()
    nonce, f = task(tmp_path / "work")
    value = f"cat {f}" if arg == "cmd" else str(f)
    prompt = f"What is the secret word in answer.txt? mock-tool: {tool} {json.dumps({arg: value})}"
    if cli == "claude":
        out = claude(gw, keys[case], model, prompt, tmp_path / "work")
        assert not out.get("is_error"), out
        text = out["result"]
    else:
        p = (codex if cli == "codex" else gemini)(gw, keys[case], model, prompt, tmp_path / "work")
        assert p.returncode == 0, f"{cli} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
        text = p.stdout
    # The tool ran on this machine, and its result came back through the
    # gateway: the mock's reply quotes it.
    assert f"mock reply: tool said" in text and nonce in text, text
    calls = gw.mock.provider_requests()
    tool_calls = [r for r in calls if tool in json.dumps(r["body"]) and nonce in json.dumps(r["body"])]
    assert tool_calls, "the tool result never reached the provider"
    rows = assert_one_trace_per_call(gw, case)
    assert {r["provider"] for r in rows} == {provider}, rows
    if case.endswith("translated"):
        dropped = set().union(*(json.loads(r["dropped_fields"]) for r in rows))
        if cli == "claude":
            assert "context_management" in dropped, dropped
        if cli == "codex":
            assert "client_metadata" in dropped, dropped


def websocket_refusals(gw: Gateway) -> float:
    for line in httpx.get(gw.dp_url + "/metrics", timeout=5).text.splitlines():
        if line.startswith('aigw_request_errors_total{kind="websocket_not_served"} '):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("the data plane does not count WebSocket refusals")


def test_codex_builtin_provider_falls_back_to_http_at_once(cgw: tuple[Gateway, dict[str, str]],
                                                          tmp_path: Path) -> None:
    """Codex's built-in provider tries a WebSocket first. The gateway's 426
    makes it use HTTP at once: one handshake for the session, not the six
    retries (and seconds of back-off) a 404 or 405 caused, and the task
    completes over HTTP with one trace per model call."""
    gw, keys = cgw
    gw.mock.clear()
    before = websocket_refusals(gw)
    nonce, f = task(tmp_path / "work")
    prompt = f"What is the secret word? mock-tool: exec_command {json.dumps({'cmd': f'cat {f}'})}"
    p = codex_builtin(gw, keys["codex-builtin"], "gpt-5-codex", prompt, tmp_path / "work")
    assert p.returncode == 0, f"codex exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    assert "mock reply: tool said" in p.stdout and nonce in p.stdout, p.stdout
    handshakes = websocket_refusals(gw) - before
    assert handshakes == 1, f"{handshakes} WebSocket handshakes refused in one session"
    rows = assert_one_trace_per_call(gw, "codex-builtin")
    assert {r["provider"] for r in rows} == {"p-openai"}, rows


def test_a_cli_on_a_strict_route_gets_the_field_named(cgw: tuple[Gateway, dict[str, str]],
                                                      tmp_path: Path) -> None:
    """Claude Code on a strict route translated to OpenAI: refused at once,
    the error naming the field, no retry loop, no hang."""
    gw, keys = cgw
    gw.mock.clear()
    nonce, f = task(tmp_path / "work")
    out = claude(gw, keys["claude-strict"], "strict-via-openai",
                 f"mock-tool: Read {json.dumps({'file_path': str(f)})}", tmp_path / "work")
    assert out.get("is_error") and out.get("api_error_status") == 400, out
    assert "context_management" in out["result"] and "strict" in out["result"], out["result"]
    assert gw.mock.provider_requests() == [], "nothing reaches the provider"


# ---------------------------------------------------------------- the policy, over HTTP

CLAUDE_LIKE = {
    "max_tokens": 100,
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Hello there"}],
}


def test_dropped_fields_are_named_and_strict_routes_refuse_them(cgw: tuple[Gateway, dict[str, str]]) -> None:
    gw, keys = cgw
    gw.mock.clear()
    h = {"x-api-key": keys["policy"], "anthropic-version": "2023-06-01",
         "anthropic-beta": "context-management-2025-06-27"}
    lenient = httpx.post(f"{gw.dp_url}/v1/messages", headers=h, timeout=30,
                         json={"model": "cc-via-openai", **CLAUDE_LIKE})
    assert lenient.status_code == 200, lenient.text
    assert lenient.json()["content"][0]["text"] == "mock reply: Hello there"
    assert lenient.headers["x-aigw-dropped-fields"] == "context_management, system[*].cache_control"
    [sent] = gw.mock.provider_requests()
    assert sent["path"] == "/v1/chat/completions" and "context_management" not in sent["body"]
    rid = lenient.headers["x-request-id"]
    row = eventually(lambda: gw.db.rows("SELECT dropped_fields FROM traces WHERE request_id = ?", (rid,))[0])
    assert json.loads(row["dropped_fields"]) == ["context_management", "system[*].cache_control"]

    strict = httpx.post(f"{gw.dp_url}/v1/messages", headers=h, timeout=30,
                        json={"model": "strict-via-openai", **CLAUDE_LIKE})
    assert strict.status_code == 400, strict.text
    err = strict.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert "`context_management`" in err["error"]["message"] and "strict" in err["error"]["message"]
    assert len(gw.mock.provider_requests()) == 1, "the refused request never left"
    # Native (Anthropic to Anthropic): nothing is dropped, the beta passes.
    native = httpx.post(f"{gw.dp_url}/v1/messages", headers=h, timeout=30,
                        json={"model": "claude-sonnet-4-5", **CLAUDE_LIKE})
    assert native.status_code == 200 and "x-aigw-dropped-fields" not in native.headers
    assert gw.mock.provider_requests()[-1]["body"]["context_management"] == CLAUDE_LIKE["context_management"]
    assert gw.mock.provider_requests()[-1]["headers"]["anthropic-beta"] == "context-management-2025-06-27"


def test_model_listings_offer_the_aliases(cgw: tuple[Gateway, dict[str, str]]) -> None:
    """Each CLI's discovery: the OpenAI list (Codex), Anthropic's (Claude
    Code's /model), Gemini's; aliases are listed with the provider serving them."""
    gw, keys = cgw
    k = keys["sdk"]
    oa = httpx.get(f"{gw.dp_url}/v1/models", headers={"authorization": f"Bearer {k}"}).json()
    assert {"cc-via-openai", "codex-via-anthropic", "gemini-via-compat"} <= {m["id"] for m in oa["data"]}
    owner = {m["id"]: m["owned_by"] for m in oa["data"]}
    assert owner["codex-via-anthropic"] == "p-anthropic"
    an = httpx.get(f"{gw.dp_url}/v1/models", headers={"x-api-key": k, "anthropic-version": "2023-06-01"}).json()
    assert "cc-via-openai" in {m["id"] for m in an["data"]}
    ge = httpx.get(f"{gw.dp_url}/v1beta/models", headers={"x-goog-api-key": k}).json()
    assert "models/gemini-via-compat" in {m["name"] for m in ge["models"]}


# ---------------------------------------------------------------- the TypeScript SDKs

def test_typescript_sdks_every_kind(cgw: tuple[Gateway, dict[str, str]], tmp_path: Path) -> None:
    gw, keys = cgw
    gw.mock.clear()
    env = base_env(tmp_path / "home") | {
        "AIGW_BASE": gw.dp_url, "AIGW_KEY": keys["sdk"], "AIGW_MODELS": json.dumps(SDK_MODELS),
    }
    p = subprocess.run(["node", "--test", "--test-reporter=spec", "sdk.test.mjs"], cwd=CLIENTS, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"node --test failed:\n{p.stdout[-8000:]}\n{p.stderr[-4000:]}"
    assert "# fail 0" in p.stdout or "ℹ fail 0" in p.stdout, p.stdout[-2000:]
    # 3 SDKs (4 API surfaces) × 4 kinds; each call one trace with the mock's usage.
    rows = assert_one_trace_per_call(gw, "sdk")
    assert {r["provider"] for r in rows} == {"p-openai", "p-compat", "p-anthropic", "p-gemini"}


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-5"])
def test_gemini_stream_without_alt_sse_is_a_json_array_when_translated(
        cgw: tuple[Gateway, dict[str, str]], model: str) -> None:
    """`:streamGenerateContent` without `alt=sse` reads one JSON array: the
    translated answer comes back in that shape, metered."""
    gw, keys = cgw
    gw.mock.clear()
    r = httpx.post(f"{gw.dp_url}/v1beta/models/{model}:streamGenerateContent", timeout=30,
                   headers={"x-goog-api-key": keys["policy"]},
                   json={"contents": [{"role": "user", "parts": [{"text": "Hello array"}]}]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list) and len(chunks) >= 2
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "mock reply: Hello array"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == 4
    [sent] = gw.mock.provider_requests()
    assert sent["body"]["stream"] is True


def test_an_alias_must_lead_somewhere(cgw: tuple[Gateway, dict[str, str]]) -> None:
    """apply refuses an alias to a model nothing serves, or to another alias,
    and changes nothing."""
    gw, _ = cgw
    for target, why in [("nowhere-model", "which no route or provider serves"),
                        ("cc-via-openai", "which is itself an alias")]:
        r = gw.apply({"routes": [{"model": "my-claude", "alias_of": target}]})
        assert r.returncode != 0 and why in (r.stdout + r.stderr), (r.stdout, r.stderr)
    r = gw.apply({"routes": [{"model": "both", "alias_of": "gpt-4o-mini", "providers": ["p-openai"]}]})
    assert r.returncode != 0 and "alias" in (r.stdout + r.stderr)
    listed = httpx.get(f"{gw.dp_url}/v1/models", headers={"authorization": f"Bearer {cgw[1]['sdk']}"}).json()
    assert "my-claude" not in {m["id"] for m in listed["data"]}
