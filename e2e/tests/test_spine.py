"""The spine: an app calls the data plane with the official `openai` SDK and
its own key; the data plane forwards to the upstream with the pool's
credential; every call yields exactly one trace with the upstream's usage and
the right cost. Runs on SQLite and on Postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import (
    MODEL,
    POOL_SECRET,
    Expected,
    Gateway,
    assert_trace_matches,
    dumps,
    usage_summary,
)

MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Say hello to the gateway"},
]
EXPECTED = Expected.for_messages(MESSAGES)

CLIENT_IP = "203.0.113.77"
# What an app (or a proxy in front of the gateway) may send that identifies
# it; none of it may reach the upstream.
IDENTIFYING_HEADERS = {
    "cookie": "session=app-session-cookie-42",
    "x-forwarded-for": CLIENT_IP,
    "x-real-ip": CLIENT_IP,
    "forwarded": f"for={CLIENT_IP};proto=https",
    "via": "1.1 app-edge-proxy",
    "true-client-ip": CLIENT_IP,
    "cf-connecting-ip": CLIENT_IP,
}
MARKERS = [CLIENT_IP, "app-session-cookie-42", "app-edge-proxy"]


def assert_upstream_saw_only_the_pool(rec: dict[str, Any], app_key: str) -> None:
    headers = rec["headers"]
    assert headers.get("authorization") == f"Bearer {POOL_SECRET}", dumps(headers)
    for name in ("cookie", "x-forwarded-for", "x-real-ip", "forwarded", "via",
                 "true-client-ip", "cf-connecting-ip", "x-api-key"):
        assert name not in headers, f"upstream got {name}: {headers[name]!r}"
    everything = json.dumps(rec)
    assert app_key not in everything, "the app's key reached the upstream"
    for marker in MARKERS:
        assert marker not in everything, f"{marker!r} reached the upstream"
    assert rec["body"]["model"] == MODEL
    assert rec["body"]["messages"] == MESSAGES


def test_chat_completion(gw: Gateway) -> None:
    resp = gw.client().chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers=IDENTIFYING_HEADERS,
    )

    # What the app sees.
    assert resp.choices[0].message.content == EXPECTED.reply
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == MODEL
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == EXPECTED.prompt_tokens
    assert resp.usage.completion_tokens == EXPECTED.completion_tokens
    request_id = resp._request_id
    assert request_id, "no x-request-id on the response"

    # What the upstream saw.
    [rec] = gw.mock.requests()
    assert rec["path"] == "/v1/chat/completions"
    assert_upstream_saw_only_the_pool(rec, gw.app_key)
    assert usage_summary(rec["response_usage"]) == EXPECTED.usage()

    # What was recorded: one trace, under the id the app was given.
    [trace] = gw.wait_traces([request_id])
    assert_trace_matches(trace, EXPECTED, stream=False)
    assert gw.db.trace_count() == 1


def test_streaming_without_include_usage(gw: Gateway) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers=IDENTIFYING_HEADERS,
    )
    request_id = raw.headers.get("x-request-id")
    assert request_id, "no x-request-id on the streamed response"
    chunks = list(raw.parse())

    # The app gets the stream it asked for: no usage, no usage-only chunk.
    assert chunks, "empty stream"
    assert all(c.usage is None for c in chunks), "usage leaked into the app's stream"
    assert all(c.choices for c in chunks), "the app got a usage-only chunk it did not ask for"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == EXPECTED.reply
    assert chunks[-1].choices[0].finish_reason == "stop"

    # The upstream was asked for the usage, and reported it.
    [rec] = gw.mock.requests()
    assert_upstream_saw_only_the_pool(rec, gw.app_key)
    assert rec["body"]["stream"] is True
    assert rec["response_usage"] is not None, "upstream was not asked for usage"
    assert usage_summary(rec["response_usage"]) == EXPECTED.usage()

    # So the trace has the tokens anyway.
    [trace] = gw.wait_traces([request_id])
    assert_trace_matches(trace, EXPECTED, stream=True)
    assert gw.db.trace_count() == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_streaming_with_include_usage(gw: Gateway) -> None:
    raw = gw.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},
    )
    request_id = raw.headers.get("x-request-id")
    chunks = list(raw.parse())

    # Asked for: the last chunk carries the usage, with no choices.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == EXPECTED.prompt_tokens
    assert last.usage.completion_tokens == EXPECTED.completion_tokens
    assert last.usage.prompt_tokens_details.cached_tokens == EXPECTED.cached_tokens
    assert [c for c in chunks[:-1] if c.usage is not None] == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == EXPECTED.reply

    [trace] = gw.wait_traces([request_id])
    assert_trace_matches(trace, EXPECTED, stream=True)
    assert gw.db.trace_count() == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_several_calls_one_trace_each(gw: Gateway) -> None:
    client = gw.client()
    ids = []
    for i in range(3):
        resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        ids.append(resp._request_id)
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, stream=True)
        list(raw.parse())
        ids.append(raw.headers.get("x-request-id"))
    assert len(set(ids)) == 6, f"request ids are not unique: {ids}"
    traces = gw.wait_traces(ids)
    for t, stream in zip(traces, [False, True] * 3):
        assert_trace_matches(t, EXPECTED, stream=stream)
    assert gw.db.trace_count() == 6
    assert len(gw.mock.chat_requests()) == 6
