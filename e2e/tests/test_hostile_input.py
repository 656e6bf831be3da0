"""What an app can send that a naive gateway would pay for: names that steer
the upstream path, aliases that dodge cost limits, bodies that are cheap to
send and costly to translate, bodies a provider cannot parse, connections
that never finish, and streams the provider frames its own way. Each case:
a clear 4xx in the caller's format (or the documented behaviour), no
upstream call where none should happen, and the next good request served
and traced."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Iterator

import httpx
import pytest

from harness import Gateway, eventually

SECRETS = {"E2E_SECRET_GEMINI": "gk-pool-gemini-4444", "E2E_SECRET_COMPAT": "sk-pool-compat-2222"}


@pytest.fixture
def backend() -> str:
    return "sqlite"


def config(mock_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "p-gemini", "kind": "gemini", "base_url": mock_url, "models": ["gemini-*"],
             "keys": [{"name": "g", "secret": "${E2E_SECRET_GEMINI}"}]},
            {"name": "p-compat", "kind": "openai-compatible", "base_url": mock_url,
             "models": ["gpt-4o*", "cheap-alias", "org/*"],
             "model_map": {"cheap-alias": "gpt-4o"},
             "keys": [{"name": "c", "secret": "${E2E_SECRET_COMPAT}"}]},
        ],
        "pricing": [
            {"model": "gpt-4o", "input": 2.5, "output": 10.0},
            # The alias itself is priced at 0: what is billed must be the
            # model sent upstream, not this.
            {"model": "cheap-alias", "input": 0.0, "output": 0.0},
            {"model": "gemini-2.5-flash", "input": 0.3, "output": 2.5},
        ],
        "client_keys": [
            {"name": "app", "key": "${E2E_APP_KEY}"},
            {"name": "capped", "key": "sk-aigw-capped-key-123456", "limits": {"cost_per_day": 5.0}},
        ],
    }


@pytest.fixture
def hgw(stack: Gateway) -> Iterator[Gateway]:
    stack.apply_ok(config(stack.mock.url), env=SECRETS)
    stack.start_data_plane(AIGW_HEADER_TIMEOUT_SECS="1", AIGW_BODY_TIMEOUT_SECS="1",
                           AIGW_MAX_CONNECTIONS="16")
    stack.wait_key_known()
    stack.wait_key_known("sk-aigw-capped-key-123456")
    stack.mock.clear()
    yield stack


def post(gw: Gateway, path: str, body: Any, key: str | None = None, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gw.dp_url + path, content=content, timeout=30,
                      headers={"authorization": f"Bearer {key or gw.app_key}",
                               "content-type": "application/json"}, **kw)


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}


def served_next(gw: Gateway) -> None:
    """The next good request is served and traced."""
    r = post(gw, "/v1/chat/completions", chat_body("gpt-4o"))
    assert r.status_code == 200, r.text
    [trace] = gw.wait_traces([r.headers["x-request-id"]])
    assert trace["status"] == 200 and trace["output_tokens"] > 0


# ---------------------------------------------------------------- the upstream path

@pytest.mark.parametrize("model", ["x:batchGenerateContent#", "../../v1beta/files", "gemini-x?alt=json",
                                   "gemini-" + "a" * 300])
def test_a_model_name_cannot_steer_the_upstream_path(hgw: Gateway, model: str) -> None:
    r = post(hgw, "/v1/chat/completions", chat_body(model))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "model"
    assert hgw.mock.provider_requests() == []
    served_next(hgw)


@pytest.mark.parametrize("path", ["/v1beta/models/gemini-x%2F..%2F..%2Ffiles:generateContent",
                                  "/v1beta/models/gemini-x%3AbatchGenerateContent:generateContent"])
def test_an_encoded_path_model_is_refused_in_geminis_shape(hgw: Gateway, path: str) -> None:
    r = httpx.post(hgw.dp_url + path, timeout=30, headers={"x-goog-api-key": hgw.app_key},
                   json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert hgw.mock.provider_requests() == []


def test_an_allowed_name_with_a_slash_stays_one_escaped_segment(hgw: Gateway) -> None:
    # Routed to openai-compatible (in the body), the name travels as is.
    r = post(hgw, "/v1/chat/completions", chat_body("org/model-1"))
    assert r.status_code == 200, r.text
    assert hgw.mock.chat_requests()[0]["body"]["model"] == "org/model-1"


# ---------------------------------------------------------------- cost limits

def test_an_alias_is_billed_as_the_model_sent_upstream(hgw: Gateway) -> None:
    r = post(hgw, "/v1/chat/completions", chat_body("cheap-alias"))
    assert r.status_code == 200, r.text
    assert hgw.mock.chat_requests()[0]["body"]["model"] == "gpt-4o"
    [t] = hgw.wait_traces([r.headers["x-request-id"]])
    expected = (t["input_tokens"] * 2.5 + t["output_tokens"] * 10.0) / 1e6
    assert t["cost"] == pytest.approx(expected) and t["cost"] > 0, t


def test_a_cost_limited_key_is_never_served_an_unpriced_model(hgw: Gateway) -> None:
    capped = "sk-aigw-capped-key-123456"
    r = post(hgw, "/v1/chat/completions", chat_body("gpt-4o-unpriced-variant"), key=capped)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "model_not_priced" and "gpt-4o-unpriced-variant" in err["message"], err
    assert hgw.mock.provider_requests() == []
    # Priced: served. Without a cost limit the unpriced model is served too.
    assert post(hgw, "/v1/chat/completions", chat_body("gpt-4o"), key=capped).status_code == 200
    assert post(hgw, "/v1/chat/completions", chat_body("gpt-4o-unpriced-variant")).status_code == 200


# ---------------------------------------------------------------- Gemini's JSON-array stream

def gemini_stream(gw: Gateway, model: str) -> httpx.Response:
    return httpx.post(f"{gw.dp_url}/v1beta/models/{model}:streamGenerateContent", timeout=30,
                      headers={"x-goog-api-key": gw.app_key},
                      json={"contents": [{"role": "user", "parts": [{"text": "stream to me please"}]}]})


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gpt-4o"])
def test_a_gemini_stream_without_alt_sse_is_a_json_array_and_metered(hgw: Gateway, model: str) -> None:
    r = gemini_stream(hgw, model)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list) and len(chunks) >= 2, r.text
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "mock reply: stream to me please"
    usage = chunks[-1]["usageMetadata"]
    [t] = hgw.wait_traces([r.headers["x-request-id"]])
    assert (t["input_tokens"], t["output_tokens"]) == (usage["promptTokenCount"],
                                                       usage["candidatesTokenCount"]), t
    assert t["output_tokens"] > 0 and t["cost"] > 0 and t["stream"] is True
    upstream = hgw.mock.provider_requests()[0]
    if model.startswith("gemini"):
        # Native: the app's framing is kept (the provider streams the array).
        assert "alt=sse" not in upstream["query"], upstream
    else:
        # Translated from an OpenAI-style stream into the array.
        assert upstream["path"] == "/v1/chat/completions" and upstream["body"]["stream"] is True


# ---------------------------------------------------------------- cheap to send, costly to process

def ref_bomb() -> dict[str, Any]:
    defs = {f"D{i}": {"type": "object", "properties": {k: {"$ref": f"#/$defs/D{i + 1}"} for k in "abc"}}
            for i in range(14)}
    defs["D14"] = {"type": "string"}
    return {"$defs": defs, "$ref": "#/$defs/D0"}


def test_a_ref_bomb_for_gemini_is_refused_quickly(hgw: Gateway) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": ref_bomb()}}]
    body = chat_body("gemini-2.5-flash", tools=tools)
    assert len(json.dumps(body)) < 4096
    r = post(hgw, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    assert "20,000 nodes" in r.json()["error"]["message"]
    assert hgw.mock.provider_requests() == []
    served_next(hgw)


def test_a_megabyte_model_name_is_refused_without_matching_it(hgw: Gateway) -> None:
    r = post(hgw, "/v1/chat/completions", chat_body("*" * 1_000_000))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "model"
    served_next(hgw)


def test_bodies_a_provider_could_not_parse_are_refused(hgw: Gateway) -> None:
    bad_utf8 = b'{"model":"gpt-4o","messages":[{"role":"user","content":"\xff\xfe"}]}'
    deep = b'{"model":"gpt-4o","messages":[],"x":' + b"[" * 500 + b"]" * 500 + b"}"
    for body, what in ((bad_utf8, "UTF-8"), (deep, "nested")):
        r = post(hgw, "/v1/chat/completions", body)
        assert r.status_code == 400, r.text
        assert what in r.json()["error"]["message"], r.text
    assert hgw.mock.provider_requests() == []
    served_next(hgw)


# ---------------------------------------------------------------- slow clients

def test_unfinished_heads_are_closed_and_the_connection_cap_holds(hgw: Gateway) -> None:
    host, port = hgw.dp_url.removeprefix("http://").split(":")
    socks = []
    for _ in range(24):  # more than AIGW_MAX_CONNECTIONS=16
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)

    def all_closed() -> None:
        for s in socks:
            s.settimeout(0.05)
            try:
                data = s.recv(1024)
            except socket.timeout:
                raise AssertionError("still open")
            except ConnectionError:
                continue
            # Closed (b""), possibly after a 408 hyper writes first.
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data

    # Header timeout 1 s: the first 16 go at once, the rest once admitted.
    eventually(all_closed, timeout=10, what="slow heads closed")
    for s in socks:
        s.close()
    served_next(hgw)


def test_a_body_that_never_arrives_gets_408(hgw: Gateway) -> None:
    host, port = hgw.dp_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + hgw.app_key.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":")
        t0 = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "closed without an answer"
            data += chunk
        assert time.monotonic() - t0 < 5
    assert data.startswith(b"HTTP/1.1 408"), data
    assert hgw.mock.provider_requests() == []
    served_next(hgw)


# ---------------------------------------------------------------- traces

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_an_oversized_spooled_trace_never_blocks_the_ones_after_it(stack: Gateway, pb: Any) -> None:
    """A spool left by an older version holds a trace with a 7 MiB model
    name: it is delivered clipped, and every later trace still arrives."""
    stack.apply_ok(config(stack.mock.url), env=SECRETS)
    spool = stack.workdir / "dp-state" / "traces"
    spool.mkdir(parents=True)
    huge = pb.trace_pb2.TraceRecord(request_id="req-poison", model="m" * (7 * 1024 * 1024),
                                    status=200, client_key_name="app", error="x" * 100_000)
    data = huge.SerializeToString()
    (spool / f"{1:020}.seg").write_bytes(varint(len(data)) + data)
    stack.start_data_plane()
    stack.wait_key_known()
    [poison] = stack.wait_traces(["req-poison"])
    assert len(poison["model"]) == 256 and len(poison["error"]) == 1024
    r = post(stack, "/v1/chat/completions", chat_body("gpt-4o"))
    assert r.status_code == 200
    stack.wait_traces([r.headers["x-request-id"]])
