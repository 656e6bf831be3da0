"""Client key quotas, as an app sees them: past its requests-per-minute or
its daily token budget, a key gets 429 with Retry-After in its SDK's own
error shape, and nothing reaches the upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from harness import MODEL, Gateway, gateway_config

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def limited(stack: Gateway) -> Gateway:
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}", "limits": {"rpm": 2}},
        {"name": "budget", "key": "sk-e2e-budget-key-1", "limits": {"tokens_per_day": 5}},
    ]))
    stack.start_data_plane()
    stack.wait_key_known()
    stack.wait_key_known("sk-e2e-budget-key-1")
    stack.mock.clear()
    return stack


def test_requests_per_minute(limited: Gateway) -> None:
    client = limited.client()
    for _ in range(2):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert int(exc.value.response.headers["retry-after"]) >= 1
    body = exc.value.response.json()["error"]
    assert body["type"] == "rate_limit_error" and "rpm" in body["message"]
    assert len(limited.mock.chat_requests()) == 2
    # The refused call is traced too, so admins see it.
    trace = limited.wait_traces([exc.value.response.headers["x-request-id"]])[0]
    assert (trace["status"], trace["error"]) == (429, "rate_limited")

    # An Anthropic app with the same key gets Anthropic's shape.
    a = anthropic.Anthropic(base_url=limited.dp_url, api_key=limited.app_key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as aexc:
        a.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES)
    assert aexc.value.body["error"]["type"] == "rate_limit_error"


def test_daily_token_budget(limited: Gateway) -> None:
    key = "sk-e2e-budget-key-1"
    first = limited.client(key).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert first.usage is not None and first.usage.total_tokens > 5
    # Counted from the trace of the call that used them; the next is refused.
    r = httpx.post(limited.dp_url + "/v1/chat/completions", timeout=30,
                   headers={"authorization": f"Bearer {key}"},
                   json={"model": MODEL, "messages": MESSAGES})
    assert r.status_code == 429, r.text
    assert "tokens_per_day" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1
    assert len(limited.mock.chat_requests()) == 1
    # Other keys are not affected.
    assert limited.client().chat.completions.create(model=MODEL, messages=MESSAGES).choices
