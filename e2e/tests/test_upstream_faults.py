"""Upstream faults as an app sees them: a rate-limited, failing or rejecting
credential is replaced by the next one in the pool (and cooled down); when
none is left the app gets a clear error in its own format with Retry-After
where it applies; a stream cut upstream ends with the app's own error event,
which its SDK raises; every answered
request leaves a trace with its attempts, and no pool secret ever reaches
the app."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import httpx
import openai
import pytest

from harness import MODEL, POOL_SECRET, Gateway, gateway_config

SECOND_SECRET = "sk-pool-secret-second-456"
MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def pool(stack: Gateway) -> Iterator[Gateway]:
    """Two credentials, used in order (fill-first), so each test knows which
    one an attempt goes to."""
    config = gateway_config(stack.mock.url)
    provider = config["providers"][0]
    provider["strategy"] = "fill-first"
    provider["keys"] = [
        {"name": "pool-a", "secret": "${E2E_POOL_SECRET}"},
        {"name": "pool-b", "secret": SECOND_SECRET},
    ]
    stack.apply_ok(config)
    stack.start_data_plane(AIGW_STREAM_IDLE_TIMEOUT_SECS="1")
    stack.wait_key_known()
    stack.mock.clear()
    yield stack


def attempts(gw: Gateway, request_id: str) -> list[dict[str, Any]]:
    [row] = gw.db.rows("SELECT attempts FROM traces WHERE request_id = ?", (request_id,))
    return json.loads(row["attempts"])


def upstream_keys(gw: Gateway) -> list[str]:
    return [r["headers"]["authorization"].removeprefix("Bearer ") for r in gw.mock.chat_requests()]


def post_chat(gw: Gateway, **extra: Any) -> httpx.Response:
    return httpx.post(gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"},
                      json={"model": MODEL, "messages": MESSAGES, **extra})


def test_a_rate_limited_credential_is_replaced_and_cooled_down(pool: Gateway) -> None:
    pool.mock.add_fault(status=429, retry_after=30, key=POOL_SECRET)
    first = pool.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert first.choices[0].message.content.startswith("mock reply:")
    assert upstream_keys(pool) == [POOL_SECRET, SECOND_SECRET]

    # pool-a is cooling down for Retry-After: the next call goes to pool-b only.
    pool.mock.clear()
    second = pool.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert upstream_keys(pool) == [SECOND_SECRET]

    [t1, t2] = pool.wait_traces([first._request_id, second._request_id])
    assert (t1["status"], t1["provider_key"]) == (200, "pool-b")
    assert [(a["provider_key"], a["status"]) for a in attempts(pool, first._request_id)] == [
        ("pool-a", 429), ("pool-b", 200)]
    assert [(a["provider_key"], a["status"]) for a in attempts(pool, second._request_id)] == [
        ("pool-b", 200)]
    assert t2["input_tokens"] > 0


def test_when_every_credential_is_rate_limited_the_app_gets_429_with_retry_after(pool: Gateway) -> None:
    pool.mock.add_fault(status=429, retry_after=3, times=2)
    r = post_chat(pool)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["error"]["message"]
    assert POOL_SECRET not in r.text and SECOND_SECRET not in r.text
    [trace] = pool.wait_traces([r.headers["x-request-id"]])
    assert trace["status"] == 429
    assert len(attempts(pool, r.headers["x-request-id"])) == 2

    # Both are cooling down now: refused without calling upstream at all.
    pool.mock.clear()
    again = post_chat(pool)
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) >= 1
    assert pool.mock.chat_requests() == []


def test_a_server_error_moves_to_the_next_credential(pool: Gateway) -> None:
    pool.mock.add_fault(status=503, key=POOL_SECRET)
    resp = pool.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert resp.choices[0].finish_reason == "stop"
    assert upstream_keys(pool) == [POOL_SECRET, SECOND_SECRET]
    assert [a["status"] for a in attempts(pool, pool.wait_traces([resp._request_id])[0]["request_id"])] == [503, 200]


def test_a_rejected_credential_never_reaches_the_app(pool: Gateway) -> None:
    # The upstream quotes the credential in its message, as OpenAI does.
    pool.mock.add_fault(status=401, times=2,
                        message=f"Incorrect API key provided: {POOL_SECRET} / {SECOND_SECRET}")
    with pytest.raises(openai.APIStatusError) as exc:
        pool.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert exc.value.status_code == 502
    text = exc.value.response.text
    assert POOL_SECRET not in text and SECOND_SECRET not in text
    assert "credential" in exc.value.message
    rid = exc.value.response.headers["x-request-id"]
    assert pool.wait_traces([rid])[0]["status"] == 502


def test_an_app_error_is_relayed_without_retrying_or_cooling_down(pool: Gateway) -> None:
    # A 400 or 403 is about the request, not the credential: no second
    # attempt, and pool-a stays in service.
    pool.mock.add_fault(status=403, key=POOL_SECRET, message="model not allowed for this key")
    r = post_chat(pool)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "model not allowed for this key"
    assert upstream_keys(pool) == [POOL_SECRET]
    pool.mock.clear()
    assert post_chat(pool).status_code == 200
    assert upstream_keys(pool) == [POOL_SECRET]


def test_a_stream_cut_upstream_is_cut_for_the_app_and_still_traced(pool: Gateway) -> None:
    pool.mock.add_fault(cut_after_chunks=3)
    got: list[str] = []
    # An error chunk in OpenAI's shape, not a torn connection: the SDK raises
    # it as the API error it is.
    with pytest.raises(openai.APIError, match="upstream connection broke"):
        with pool.client().chat.completions.with_streaming_response.create(
                model=MODEL, messages=MESSAGES, stream=True) as resp:
            rid = resp.headers["x-request-id"]
            for chunk in resp.parse():
                if chunk.choices and chunk.choices[0].delta.content:
                    got.append(chunk.choices[0].delta.content)
    assert 0 < len(got) < 8, got
    [trace] = pool.wait_traces([rid])
    assert trace["status"] == 200
    assert trace["error"] == "upstream stream cut"
    assert trace["stream"] is True


def test_a_stalled_stream_is_given_up_after_the_idle_timeout(pool: Gateway) -> None:
    # The data plane runs with a 1 s idle timeout; the upstream goes quiet for 4 s.
    pool.mock.add_fault(chunk_delay_ms=4000)
    started = time.monotonic()
    with pytest.raises(openai.APIError, match="the upstream sent nothing for 1 s"):
        with pool.client().chat.completions.with_streaming_response.create(
                model=MODEL, messages=MESSAGES, stream=True) as resp:
            rid = resp.headers["x-request-id"]
            for _ in resp.parse():
                pass
    assert time.monotonic() - started < 3.5
    [trace] = pool.wait_traces([rid])
    assert trace["error"] == "upstream stream stalled"
