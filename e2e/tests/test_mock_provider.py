"""The mock provider itself, driven by the official `openai` SDK: the other
tests trust what it reports, so it must speak the wire format faithfully."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from harness import Expected, Mock, usage_summary

MESSAGES = [
    {"role": "developer", "content": "Answer briefly."},
    {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "a gateway?"}]},
]


def sdk(mock: Mock, key: str = "sk-test-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.url + "/v1", api_key=key, max_retries=0, timeout=10)


def test_chat_completion_is_parsed_by_the_sdk(mock: Mock) -> None:
    exp = Expected.for_messages(MESSAGES)
    resp = sdk(mock).chat.completions.create(model="any-model", messages=MESSAGES)
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == "any-model"
    assert resp.choices[0].message.content == exp.reply == "mock reply: What is a gateway?"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == exp.prompt_tokens == 6
    assert resp.usage.prompt_tokens_details.cached_tokens == exp.cached_tokens == 2
    assert resp.usage.completion_tokens == exp.completion_tokens == 6
    assert resp._request_id and resp._request_id.startswith("req_")

    [rec] = mock.requests()
    assert rec["headers"]["authorization"] == "Bearer sk-test-key"
    assert rec["body"]["messages"] == MESSAGES
    assert rec["response_status"] == 200
    assert usage_summary(rec["response_usage"]) == exp.usage()


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream(mock: Mock, include_usage: bool) -> None:
    exp = Expected.for_messages(MESSAGES)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(sdk(mock).chat.completions.create(model="m", messages=MESSAGES, stream=True, **extra))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == exp.reply
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    [rec] = mock.requests()
    if include_usage:
        [last] = usage_chunks
        assert last is chunks[-1] and last.choices == []
        assert last.usage.completion_tokens == exp.completion_tokens
        assert usage_summary(rec["response_usage"]) == exp.usage()
    else:
        assert usage_chunks == []
        assert rec["response_usage"] is None


def test_missing_bearer_is_a_401_in_openai_shape(mock: Mock) -> None:
    r = httpx.post(mock.url + "/v1/chat/completions", json={"model": "m", "messages": []})
    assert r.status_code == 401
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "API key" in err["message"]


def test_rate_limit_fault_has_retry_after(mock: Mock) -> None:
    mock.add_fault(status=429, retry_after=7, times=1)
    with pytest.raises(openai.RateLimitError) as exc:
        sdk(mock).chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.code == "rate_limit_exceeded"
    # Only once.
    assert sdk(mock).chat.completions.create(model="m", messages=MESSAGES).choices
    assert [r["response_status"] for r in mock.requests()] == [429, 200]


def test_fault_for_one_key_only(mock: Mock) -> None:
    mock.add_fault(status=503, key="sk-a")
    assert sdk(mock, "sk-b").chat.completions.create(model="m", messages=MESSAGES).choices
    with pytest.raises(openai.InternalServerError):
        sdk(mock, "sk-a").chat.completions.create(model="m", messages=MESSAGES)


def test_cut_stream_ends_without_done(mock: Mock) -> None:
    mock.add_fault(cut_after_chunks=2)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for c in sdk(mock).chat.completions.create(model="m", messages=MESSAGES, stream=True):
            got.append(c.choices[0].delta.content or "")
    # The role chunk and the first word arrived, then the connection dropped.
    assert got == ["", "mock"]
    [rec] = mock.requests()
    assert rec["response_usage"] is None


def test_delay(mock: Mock) -> None:
    mock.add_fault(delay_ms=400)
    t0 = time.monotonic()
    sdk(mock).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    sdk(mock).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - t0 < 0.4


def test_clearing(mock: Mock) -> None:
    mock.add_fault(status=500, times=5)
    mock.clear_faults()
    sdk(mock).chat.completions.create(model="m", messages=MESSAGES)
    assert len(mock.requests()) == 1
    mock.clear()
    assert mock.requests() == []


def test_bad_fault_is_refused(mock: Mock) -> None:
    r = mock.http.post("/_mock/faults", json={"stauts": 500})
    assert r.status_code == 400
    assert "stauts" in r.json()["error"]["message"]


def test_models_list(mock: Mock) -> None:
    models = sdk(mock).models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]
