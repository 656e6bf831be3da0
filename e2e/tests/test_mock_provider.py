"""The mock provider itself, driven by the official SDKs (`openai`,
`anthropic`, `google-genai`) pointed straight at it: the other tests trust
what it reports, so it must speak every wire format faithfully."""

from __future__ import annotations

import base64
import json
import struct
import time

import anthropic
import httpx
import httpx2
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from harness import Expected, Mock, genai_client, normalized_usage, usage_summary

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


# ---------------------------------------------------------------- every format
# The official SDKs pointed straight at the mock must parse what it says:
# text, tool calls and usage, streamed or not.

SYSTEM = "You are a weather bot."  # 5 words: the cached tokens
QUESTION = "What is the weather in Paris?"  # 6 words
TOOL_RESULT = "Sunny, 21 C"  # 3 words
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
# First turn: 11 prompt tokens (5 cached), the call's arguments `{"city":"Paris"}` are 1 token.
CALL_USAGE = {"input": 11, "cached": 5, "output": 1}
# Second turn: the tool result's 3 words more; "mock reply: tool said Sunny, 21 C" is 7.
REPLY = f"mock reply: tool said {TOOL_RESULT}"
REPLY_USAGE = {"input": 14, "cached": 5, "output": 7}


def test_chat_tool_round_trip(mock: Mock) -> None:
    client = sdk(mock)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="m", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert first.choices[0].finish_reason == "tool_calls"
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT}]
    chunks = list(client.chat.completions.create(model="m", messages=messages, tools=tools, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    recs = mock.requests()
    assert [normalized_usage(r["response_usage"]) for r in recs] == [CALL_USAGE, REPLY_USAGE]


def test_chat_refuses_gemini_schema_types(mock: Mock) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "OBJECT"}}}]
    with pytest.raises(openai.BadRequestError, match="OBJECT"):
        sdk(mock).chat.completions.create(model="m", messages=MESSAGES, tools=tools)


# -- OpenAI Responses

RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city.",
                    "parameters": SCHEMA, "strict": True}]


def test_responses_text(mock: Mock) -> None:
    resp = sdk(mock).responses.create(model="gpt-4o", instructions=SYSTEM, input=QUESTION)
    assert resp.status == "completed"
    assert resp.output_text == f"mock reply: {QUESTION}"
    assert resp.usage.input_tokens == 11
    assert resp.usage.input_tokens_details.cached_tokens == 5
    assert resp.usage.output_tokens == 8
    assert resp._request_id.startswith("req_")
    [rec] = mock.requests()
    assert rec["path"] == "/v1/responses"
    assert normalized_usage(rec["response_usage"]) == {"input": 11, "cached": 5, "output": 8}


def test_responses_tool_round_trip_streamed(mock: Mock) -> None:
    client = sdk(mock)
    inputs: list = [{"role": "user", "content": QUESTION}]
    with client.responses.stream(model="gpt-4o", instructions=SYSTEM, input=inputs, tools=RESPONSES_TOOLS) as st:
        events = [e.type for e in st]
        first = st.get_final_response()
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in events
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert first.usage.output_tokens == 1
    inputs += [{"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": TOOL_RESULT}]
    with client.responses.stream(model="gpt-4o", instructions=SYSTEM, input=inputs, tools=RESPONSES_TOOLS) as st:
        deltas = [e.delta for e in st if e.type == "response.output_text.delta"]
        second = st.get_final_response()
    assert "".join(deltas) == second.output_text == REPLY
    recs = mock.requests()
    assert [normalized_usage(r["response_usage"]) for r in recs] == [CALL_USAGE, REPLY_USAGE]


# -- OpenAI embeddings

def test_embeddings_float_and_base64(mock: Mock) -> None:
    client = sdk(mock)
    # The SDK asks for base64 unless told otherwise, and decodes it.
    default = client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    floats = client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"],
                                      encoding_format="float")
    assert [len(d.embedding) for d in default.data] == [8, 8]
    for a, b in zip(default.data, floats.data):
        assert a.embedding == pytest.approx(b.embedding)
    assert default.usage.prompt_tokens == default.usage.total_tokens == 3
    recs = mock.requests()
    assert recs[0]["body"].get("encoding_format") == "base64"
    raw = base64.b64decode(mock.http.post("/v1/embeddings", headers={"authorization": "Bearer k"}, json={
        "model": "e", "input": "one two", "encoding_format": "base64"}).json()["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == pytest.approx(floats.data[0].embedding)


# -- Anthropic

ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "The weather in a city.", "input_schema": SCHEMA}]


def anthropic_sdk(mock: Mock, key: str = "sk-ant-test") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock.url, api_key=key, max_retries=0, timeout=10)


def test_anthropic_text(mock: Mock) -> None:
    raw = anthropic_sdk(mock).messages.with_raw_response.create(
        model="claude-x", max_tokens=64, system=SYSTEM, messages=[{"role": "user", "content": QUESTION}])
    msg = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == f"mock reply: {QUESTION}"
    assert msg.stop_reason == "end_turn"
    # input_tokens leaves out what was read from the cache.
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (6, 5, 8)
    [rec] = mock.requests()
    assert rec["headers"]["authorization"] == "Bearer sk-ant-test"  # where SDK 2.x puts the key
    assert rec["headers"]["anthropic-version"]


def test_anthropic_tool_round_trip(mock: Mock) -> None:
    client = anthropic_sdk(mock)
    messages: list = [{"role": "user", "content": QUESTION}]
    first = client.messages.create(model="claude-x", max_tokens=64, system=SYSTEM, messages=messages,
                                   tools=ANTHROPIC_TOOLS)
    [block] = first.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert first.stop_reason == "tool_use"
    messages += [{"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                               "content": TOOL_RESULT}]}]
    second = client.messages.create(model="claude-x", max_tokens=64, system=SYSTEM, messages=messages,
                                    tools=ANTHROPIC_TOOLS)
    assert second.content[0].text == REPLY
    recs = mock.requests()
    assert [normalized_usage(r["response_usage"]) for r in recs] == [CALL_USAGE, REPLY_USAGE]


@pytest.mark.parametrize("tools", [False, True])
def test_anthropic_stream(mock: Mock, tools: bool) -> None:
    extra = {"tools": ANTHROPIC_TOOLS} if tools else {}
    with anthropic_sdk(mock).messages.stream(model="claude-x", max_tokens=64, system=SYSTEM,
                                             messages=[{"role": "user", "content": QUESTION}], **extra) as st:
        events = [e.type for e in st]
        final = st.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "message_delta" in events
    if tools:
        assert "input_json" in events  # the SDK's event for input_json_delta
        [block] = final.content
        assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "Paris"})
        assert final.stop_reason == "tool_use"
    else:
        assert final.content[0].text == f"mock reply: {QUESTION}"
        assert final.stop_reason == "end_turn"
    # The SDK keeps the last (cumulative) counts.
    out = 1 if tools else 8
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (6, 5, out)
    [rec] = mock.requests()
    assert normalized_usage(rec["response_usage"]) == {"input": 11, "cached": 5, "output": out}


def test_anthropic_count_tokens_and_models(mock: Mock) -> None:
    client = anthropic_sdk(mock)
    count = client.messages.count_tokens(model="claude-x", system=SYSTEM,
                                         messages=[{"role": "user", "content": QUESTION}])
    assert count.input_tokens == 11
    models = client.models.list()
    assert all(m.type == "model" and m.display_name for m in models.data)
    assert models.data[0].id.startswith("claude-")
    assert client.models.retrieve(models.data[0].id).id == models.data[0].id


def test_anthropic_errors(mock: Mock) -> None:
    r = httpx.post(mock.url + "/v1/messages", json={"model": "c", "max_tokens": 1, "messages": []},
                   headers={"x-api-key": "k"})
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}
    r = httpx.post(mock.url + "/v1/messages", json={}, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        anthropic_sdk(mock).messages.create(model="c", max_tokens=None,  # type: ignore[arg-type]
                                            messages=[{"role": "user", "content": "x"}])
    mock.add_fault(status=429, retry_after=3, path="/v1/messages")
    with pytest.raises(anthropic.RateLimitError) as exc:
        anthropic_sdk(mock).messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert exc.value.response.headers["retry-after"] == "3"
    assert exc.value.body["error"]["type"] == "rate_limit_error"
    mock.add_fault(status=529)
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic_sdk(mock).messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 529 and exc.value.body["error"]["type"] == "overloaded_error"


def test_anthropic_cut_stream(mock: Mock) -> None:
    mock.add_fault(cut_after_chunks=4, path="/v1/messages")
    # The anthropic SDK lets the transport's error through.
    with pytest.raises((anthropic.APIConnectionError, httpx2.HTTPError)):
        with anthropic_sdk(mock).messages.stream(model="c", max_tokens=5,
                                                 messages=[{"role": "user", "content": "x"}]) as st:
            for _ in st:
                pass
    [rec] = mock.requests()
    assert rec["response_usage"] is None


# -- Gemini

GEMINI_TOOL = genai_types.Tool(function_declarations=[genai_types.FunctionDeclaration(
    name="get_weather", description="The weather in a city.", parameters=SCHEMA)])


def gemini_config(tools: bool = True) -> genai_types.GenerateContentConfig:
    return genai_types.GenerateContentConfig(
        system_instruction=SYSTEM, tools=[GEMINI_TOOL] if tools else None,
        automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True))


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_gemini_text(mock: Mock, api_version: str | None) -> None:
    client = genai_client(mock.url, "gk-test", api_version)
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=QUESTION, config=gemini_config(False))
    assert resp.text == f"mock reply: {QUESTION}"
    assert resp.candidates[0].finish_reason == genai_types.FinishReason.STOP
    u = resp.usage_metadata
    assert (u.prompt_token_count, u.cached_content_token_count, u.candidates_token_count) == (11, 5, 8)
    assert u.total_token_count == 19
    [rec] = mock.requests()
    # The SDK's default API version is v1.
    assert rec["path"] == f"/{api_version or 'v1'}/models/gemini-2.5-flash:generateContent"
    assert rec["headers"]["x-goog-api-key"] == "gk-test"


def test_gemini_tool_round_trip_streamed(mock: Mock) -> None:
    client = genai_client(mock.url, "gk-test")
    contents = [genai_types.Content(role="user", parts=[genai_types.Part.from_text(text=QUESTION)])]
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=contents,
                                                        config=gemini_config()))
    calls = [fc for c in chunks for fc in (c.function_calls or [])]
    assert [(fc.name, fc.args) for fc in calls] == [("get_weather", {"city": "Paris"})]
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    contents += [genai_types.Content(role="model", parts=[genai_types.Part(function_call=calls[0])]),
                 genai_types.Content(role="user", parts=[genai_types.Part.from_function_response(
                     name="get_weather", response={"result": TOOL_RESULT})])]
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=contents,
                                                        config=gemini_config()))
    assert "".join(c.text or "" for c in chunks) == REPLY
    # Every chunk has the usage so far; the last one has it all.
    assert [c.usage_metadata.candidates_token_count for c in chunks] == list(range(1, 8))
    assert chunks[-1].usage_metadata.prompt_token_count == 14
    recs = mock.requests()
    assert [r["query"] for r in recs] == ["alt=sse", "alt=sse"]
    assert [normalized_usage(r["response_usage"]) for r in recs] == [CALL_USAGE, REPLY_USAGE]


def test_gemini_count_embed_models(mock: Mock) -> None:
    client = genai_client(mock.url, "gk-test")
    assert client.models.count_tokens(model="gemini-2.5-flash", contents=QUESTION).total_tokens == 6
    emb = client.models.embed_content(model="gemini-embedding-001", contents=["one two", "three"])
    assert [len(e.values) for e in emb.embeddings] == [8, 8]
    # Gemini's API reports no usage for embeddings, and neither does the mock.
    assert getattr(emb, "usage_metadata", None) is None
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash" in names
    assert client.models.get(model="gemini-2.5-pro").display_name == "Gemini 2.5 Pro"
    paths = [r["path"] for r in mock.requests()]
    # The SDK's embed_content calls batchEmbedContents.
    assert paths[:2] == ["/v1/models/gemini-2.5-flash:countTokens",
                         "/v1/models/gemini-embedding-001:batchEmbedContents"]
    r = httpx.post(mock.url + "/v1beta/models/gemini-embedding-001:embedContent?key=gk",
                   json={"content": {"parts": [{"text": "one two"}]}})
    assert r.status_code == 200
    assert r.json()["embedding"]["values"] == pytest.approx(emb.embeddings[0].values)


def test_gemini_errors(mock: Mock) -> None:
    r = httpx.post(mock.url + "/v1beta/models/g:generateContent", json={"contents": []})
    assert r.status_code == 403
    assert set(r.json()["error"]) == {"code", "message", "status"}
    assert r.json()["error"]["status"] == "PERMISSION_DENIED"
    client = genai_client(mock.url, "gk-test")
    mock.add_fault(status=503, model="gemini-2.5-flash")
    with pytest.raises(genai_errors.ServerError) as exc:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (exc.value.code, exc.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.get(model="no-such-model")
    assert (exc.value.code, exc.value.status) == (404, "NOT_FOUND")
