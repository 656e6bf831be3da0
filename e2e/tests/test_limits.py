"""Client key quotas, as an app sees them: past its requests-per-minute or
its daily token budget (what a call may use is reserved before it is
forwarded), a key gets 429 with Retry-After and x-ratelimit headers in its
SDK's own error shape, and nothing reaches the upstream."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from harness import MODEL, Gateway, Proc, clean_env, eventually, gateway_config

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def limited(stack: Gateway) -> Gateway:
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}", "limits": {"rpm": 2}},
        {"name": "budget", "key": "sk-e2e-budget-key-1", "limits": {"tokens_per_day": 200}},
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
    # Each call reserves what it may use (its prompt, max_tokens) and is
    # refused once that no longer fits what is left of the day.
    served: list[str] = []
    while True:
        r = httpx.post(limited.dp_url + "/v1/chat/completions", timeout=30,
                       headers={"authorization": f"Bearer {key}"},
                       json={"model": MODEL, "messages": MESSAGES, "max_tokens": 10})
        if r.status_code != 200:
            break
        served.append(r.headers["x-request-id"])
        assert len(served) < 50, "never refused"
    assert r.status_code == 429, r.text
    assert "tokens_per_day" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ratelimit-limit-tokens"] == "200"
    assert len(served) >= 2 and len(limited.mock.chat_requests()) == len(served)
    # The served calls' traces, stored (read at once, some would be missing).
    used = sum(t["input_tokens"] + t["output_tokens"] for t in limited.wait_traces(served))
    assert used <= 200, used
    # Other keys are not affected.
    assert limited.client().chat.completions.create(model=MODEL, messages=MESSAGES).choices


def test_data_planes_share_quotas_through_redis(stack: Gateway, redis_url, tmp_path) -> None:
    url, redis_proc = redis_url
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}", "limits": {"rpm": 3}}]))
    one = stack.start_data_plane(REDIS_URL=url)
    stack.wait_key_known()
    two = Proc("data-plane", [], clean_env({
        "AIGW_LISTEN": "127.0.0.1:0", "AIGW_CONTROL_PLANE": stack.cp_url,
        "AIGW_NODE_TOKEN": stack.node_token, "AIGW_STATE_DIR": str(tmp_path / "dp2"),
        "AIGW_NODE_ID": "e2e-dp-2", "AIGW_REGION": "e2e", "REDIS_URL": url,
    }), stack.log_dir)
    try:
        urls = [stack.dp_url, f"http://{two.listening_addr()}"]

        def knows_key() -> None:
            r = httpx.get(urls[1] + "/v1/models", headers={"authorization": f"Bearer {stack.app_key}"}, timeout=5)
            assert r.status_code == 200, r.status_code

        eventually(knows_key, what="second data plane knows the key")
        for p in (one, two):
            eventually(lambda p=p: "connected to the limit store" in p.log_path.read_text(),
                       what="data plane connected to redis")

        def call(i: int) -> httpx.Response:
            return httpx.post(urls[i % 2] + "/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {stack.app_key}"},
                              json={"model": MODEL, "messages": MESSAGES})

        # Three through two data planes: each alone would allow three more.
        assert [call(i).status_code for i in range(3)] == [200, 200, 200]
        refused = call(3)
        assert refused.status_code == 429, refused.text
        assert "rpm" in refused.json()["error"]["message"]

        # Redis gone: the data planes keep serving (fail open, in-process limits).
        redis_proc.kill()
        redis_proc.wait(timeout=10)
        assert call(0).status_code == 200
    finally:
        two.stop()
