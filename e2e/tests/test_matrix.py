"""Every provider, every format: each app format (OpenAI chat, OpenAI
Responses, Anthropic Messages, Gemini generateContent) against each provider
kind (openai, openai-compatible, anthropic, gemini), plain and streamed, with
a tool-call round trip through the official SDK (`openai`, `anthropic`,
`google-genai`). Each case checks what the SDK parsed, what the provider
received (its own format, path and credential header) and the trace (the
provider's token counts, the cost, the app's format).

Then the native endpoints (count_tokens, countTokens, embeddings, model
lists) and errors in each caller's own shape.

One gateway (SQLite) serves the whole module: four providers pointing at the
same mock, told apart by their model names and pool secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import anthropic
import httpx
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from harness import Database, Gateway, dumps, normalized_usage, start_gateway

# ---------------------------------------------------------------- the configuration

@dataclass(frozen=True)
class Provider:
    kind: str
    name: str
    model: str
    secret: str
    env: str
    # USD per million tokens: input, output, cached input.
    price: tuple[float, float, float]


PROVIDERS = {
    "openai": Provider("openai", "p-openai", "oa-model", "sk-pool-openai-1111",
                       "E2E_SECRET_OPENAI", (2.5, 10.0, 1.25)),
    "compat": Provider("openai-compatible", "p-compat", "compat-model", "sk-pool-compat-2222",
                       "E2E_SECRET_COMPAT", (1.0, 2.0, 0.5)),
    "anthropic": Provider("anthropic", "p-anthropic", "claude-model", "sk-ant-pool-3333",
                          "E2E_SECRET_ANTHROPIC", (3.0, 15.0, 0.3)),
    "gemini": Provider("gemini", "p-gemini", "gemini-model", "gk-pool-gemini-4444",
                       "E2E_SECRET_GEMINI", (0.3, 2.5, 0.075)),
}
GLOBS = {"openai": "oa-*", "compat": "compat-*", "anthropic": "claude-*", "gemini": "gemini-*"}
# Embedding models (input price only).
EMBED_PRICE = 0.13
EMBED_MODELS = {"openai": "oa-embed", "compat": "compat-embed", "gemini": "gemini-embed"}


def matrix_config(mock_url: str) -> dict[str, Any]:
    return {
        "providers": [{
            "name": p.name,
            "kind": p.kind,
            "base_url": mock_url,
            "models": [GLOBS[key]],
            "strategy": "round-robin",
            "keys": [{"name": f"{key}-key", "secret": "${" + p.env + "}", "weight": 1}],
        } for key, p in PROVIDERS.items()],
        "pricing": [
            {"model": p.model, "input": p.price[0], "output": p.price[1], "cached_input": p.price[2]}
            for p in PROVIDERS.values()
        ] + [
            {"model": m, "input": EMBED_PRICE, "output": 0.0, "cached_input": EMBED_PRICE}
            for m in EMBED_MODELS.values()
        ],
        "client_keys": [{"name": "app", "key": "${E2E_APP_KEY}"}],
    }


@pytest.fixture(scope="module")
def module_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir: Path = tmp_path_factory.mktemp("matrix")
    path = workdir / "db" / "aigw.db"
    gw = start_gateway(workdir / "gw", Database("sqlite", f"sqlite://{path}", sqlite_path=path))
    try:
        gw.apply_ok(matrix_config(gw.mock.url), env={p.env: p.secret for p in PROVIDERS.values()})
        gw.start_data_plane()
        gw.wait_key_known()
        yield gw
    finally:
        gw.stop_all()


@pytest.fixture
def mgw(module_gw: Gateway) -> Gateway:
    """The module's gateway, the mock's record and faults cleared."""
    module_gw.mock.clear()
    module_gw.mock.clear_faults()
    return module_gw


# ---------------------------------------------------------------- the conversation

SYSTEM = "You are a weather bot."  # 5 words: the cached tokens
QUESTION = "What is the weather in Paris?"  # 6 words
TOOL_RESULT = "Sunny, 21 C"  # 3 words
REPLY = f"mock reply: tool said {TOOL_RESULT}"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "A city."}},
          "required": ["city"]}
TOOL_DESCRIPTION = "The current weather in a city."
# The mock's rules: the call's arguments `{"city":"Paris"}` are 1 token; the
# tool result's 3 words add to the prompt; the reply is 7 words.
CALL_USAGE = {"input": 11, "cached": 5, "output": 1}
REPLY_USAGE = {"input": 14, "cached": 5, "output": 7}


@dataclass
class Turn:
    """What the SDK parsed from one call."""

    request_id: str | None
    text: str | None
    tool: tuple[str, dict[str, Any]] | None
    stop: Any
    # The usage the app was told, as {input (cached included), cached, output};
    # None when the app did not ask for it (a chat stream without include_usage).
    usage: dict[str, int] | None


# -- OpenAI chat

CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": TOOL_DESCRIPTION,
                                                  "parameters": SCHEMA}}]


def chat_turn(gw: Gateway, model: str, messages: list, stream: bool) -> tuple[Turn, dict | None]:
    client = gw.client()
    if not stream:
        resp = client.chat.completions.create(model=model, messages=messages, tools=CHAT_TOOLS)
        msg = resp.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or []]
        request_id, text, stop = resp._request_id, msg.content, resp.choices[0].finish_reason
        assert resp.usage is not None, "no usage"
        details = resp.usage.prompt_tokens_details
        usage = {"input": resp.usage.prompt_tokens, "cached": (details.cached_tokens or 0) if details else 0,
                 "output": resp.usage.completion_tokens}
    else:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages,
                                                               tools=CHAT_TOOLS, stream=True)
        request_id = raw.headers.get("x-request-id")
        chunks = list(raw.parse())
        assert all(c.usage is None for c in chunks), "usage the app did not ask for"
        assert all(c.choices for c in chunks), "a usage-only chunk the app did not ask for"
        text = "".join(c.choices[0].delta.content or "" for c in chunks) or None
        by_index: dict[int, list] = {}
        for c in chunks:
            for tc in c.choices[0].delta.tool_calls or []:
                entry = by_index.setdefault(tc.index, [None, "", ""])
                if tc.id:
                    entry[0] = tc.id
                if tc.function and tc.function.name:
                    entry[1] += tc.function.name
                if tc.function and tc.function.arguments:
                    entry[2] += tc.function.arguments
        calls = [tuple(v) for _, v in sorted(by_index.items())]
        stops = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
        assert len(stops) == 1, stops
        stop = stops[0]
        usage = None
    assert len(calls) <= 1, calls
    tool = (calls[0][1], json.loads(calls[0][2])) if calls else None
    assistant = {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": calls[0][0], "type": "function",
                        "function": {"name": calls[0][1], "arguments": calls[0][2]}}],
    } if calls else None
    if calls:
        assert calls[0][0], "tool call without an id"
    return Turn(request_id, text, tool, stop, usage), assistant


def openai_chat(gw: Gateway, model: str, stream: bool) -> list[Turn]:
    messages: list = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    first, assistant = chat_turn(gw, model, messages, stream)
    assert assistant is not None, f"no tool call: {first}"
    messages += [assistant, {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"],
                             "content": TOOL_RESULT}]
    second, _ = chat_turn(gw, model, messages, stream)
    return [first, second]


# -- OpenAI Responses

RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "description": TOOL_DESCRIPTION,
                    "parameters": SCHEMA, "strict": False}]


def responses_turn(gw: Gateway, model: str, inputs: list, stream: bool) -> tuple[Turn, Any]:
    client = gw.client()
    args = dict(model=model, instructions=SYSTEM, input=inputs, tools=RESPONSES_TOOLS)
    if not stream:
        resp = client.responses.create(**args)
        request_id = resp._request_id
    else:
        # The SDK's stream helper checks the event sequence strictly.
        with client.responses.stream(**args) as st:
            events = list(st)
            resp = st.get_final_response()
            request_id = st._response.headers.get("x-request-id")
        types = [e.type for e in events]
        assert types[0] == "response.created" and types[-1] == "response.completed", types
        seqs = [e.sequence_number for e in events]
        assert seqs[0] == 0 and seqs == sorted(set(seqs)), f"sequence numbers {seqs}"
    calls = [o for o in resp.output if o.type == "function_call"]
    assert len(calls) <= 1, resp.output
    tool = (calls[0].name, json.loads(calls[0].arguments)) if calls else None
    text = resp.output_text or None
    assert resp.usage is not None, "no usage"
    details = resp.usage.input_tokens_details
    usage = {"input": resp.usage.input_tokens, "cached": (details.cached_tokens or 0) if details else 0,
             "output": resp.usage.output_tokens}
    turn = Turn(request_id, text, tool, (resp.status, [o.type for o in resp.output]), usage)
    return turn, (calls[0] if calls else None)


def openai_responses(gw: Gateway, model: str, stream: bool) -> list[Turn]:
    inputs: list = [{"role": "user", "content": QUESTION}]
    first, call = responses_turn(gw, model, inputs, stream)
    assert call is not None, f"no tool call: {first}"
    assert call.call_id
    inputs += [{"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id, "output": TOOL_RESULT}]
    second, _ = responses_turn(gw, model, inputs, stream)
    return [first, second]


# -- Anthropic

ANTHROPIC_TOOLS = [{"name": "get_weather", "description": TOOL_DESCRIPTION, "input_schema": SCHEMA}]
# The anthropic-version header the SDK sends.
APP_ANTHROPIC_VERSION = anthropic.Anthropic(api_key="x").default_headers["anthropic-version"]


def anthropic_turn(gw: Gateway, model: str, messages: list, stream: bool) -> tuple[Turn, Any]:
    client = gw.anthropic_client()
    args = dict(model=model, max_tokens=256, system=SYSTEM, messages=messages, tools=ANTHROPIC_TOOLS)
    if not stream:
        raw = client.messages.with_raw_response.create(**args)
        msg = raw.parse()
        request_id = raw.headers.get("x-request-id")
    else:
        with client.messages.stream(**args) as st:
            types = [e.type for e in st]
            msg = st.get_final_message()
            request_id = st.response.headers.get("x-request-id")
        assert types[0] == "message_start" and types[-1] == "message_stop", types
    assert msg.type == "message" and msg.role == "assistant"
    uses = [b for b in msg.content if b.type == "tool_use"]
    assert len(uses) <= 1, msg.content
    text = "".join(b.text for b in msg.content if b.type == "text") or None
    tool = (uses[0].name, uses[0].input) if uses else None
    u = msg.usage
    # Anthropic's input_tokens leave out the tokens read from (or written to) the cache.
    cached = u.cache_read_input_tokens or 0
    usage = {"input": u.input_tokens + cached + (u.cache_creation_input_tokens or 0), "cached": cached,
             "output": u.output_tokens}
    return Turn(request_id, text, tool, msg.stop_reason, usage), (uses[0] if uses else None)


def anthropic_messages(gw: Gateway, model: str, stream: bool) -> list[Turn]:
    messages: list = [{"role": "user", "content": QUESTION}]
    first, use = anthropic_turn(gw, model, messages, stream)
    assert use is not None, f"no tool call: {first}"
    assert use.id
    messages += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": TOOL_RESULT}]},
    ]
    second, _ = anthropic_turn(gw, model, messages, stream)
    return [first, second]


# -- Gemini

GEMINI_CONFIG = gtypes.GenerateContentConfig(
    system_instruction=SYSTEM,
    tools=[gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
        name="get_weather", description=TOOL_DESCRIPTION, parameters=SCHEMA)])],
    automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
)


def gemini_turn(gw: Gateway, model: str, contents: list, stream: bool) -> tuple[Turn, Any]:
    client = gw.genai_client()
    if not stream:
        resp = client.models.generate_content(model=model, contents=contents, config=GEMINI_CONFIG)
        chunks = [resp]
    else:
        chunks = list(client.models.generate_content_stream(model=model, contents=contents, config=GEMINI_CONFIG))
    assert chunks, "no chunk"
    request_id = chunks[0].sdk_http_response.headers.get("x-request-id")
    parts = [p for c in chunks for cand in (c.candidates or [])[:1] if cand.content
             for p in cand.content.parts or []]
    calls = [p.function_call for p in parts if p.function_call]
    assert len(calls) <= 1, calls
    text = "".join(p.text for p in parts if p.text) or None
    stops = [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]
    assert len(stops) == 1, stops
    tool = (calls[0].name, calls[0].args) if calls else None
    metas = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert metas, "no usageMetadata"
    u = metas[-1]
    usage = {"input": u.prompt_token_count or 0, "cached": u.cached_content_token_count or 0,
             "output": u.candidates_token_count or 0}
    return Turn(request_id, text, tool, stops[0], usage), (calls[0] if calls else None)


def gemini_generate(gw: Gateway, model: str, stream: bool) -> list[Turn]:
    contents: list = [gtypes.Content(role="user", parts=[gtypes.Part.from_text(text=QUESTION)])]
    first, call = gemini_turn(gw, model, contents, stream)
    assert call is not None, f"no tool call: {first}"
    contents += [
        gtypes.Content(role="model", parts=[gtypes.Part(function_call=call)]),
        gtypes.Content(role="user", parts=[gtypes.Part.from_function_response(
            name=call.name, response={"result": TOOL_RESULT})]),
    ]
    second, _ = gemini_turn(gw, model, contents, stream)
    return [first, second]


@dataclass(frozen=True)
class AppFormat:
    api_format: str  # the trace's api_format
    run: Callable[[Gateway, str, bool], list[Turn]]
    stops: tuple[Any, Any]  # the stop reasons of the two turns, in the SDK's terms


APPS = {
    "chat": AppFormat("openai", openai_chat, ("tool_calls", "stop")),
    "responses": AppFormat("openai-responses", openai_responses,
                           (("completed", ["function_call"]), ("completed", ["message"]))),
    "anthropic": AppFormat("anthropic", anthropic_messages, ("tool_use", "end_turn")),
    "gemini": AppFormat("gemini", gemini_generate, (gtypes.FinishReason.STOP, gtypes.FinishReason.STOP)),
}


# ---------------------------------------------------------------- what the provider must have seen

def expected_path(app: str, provider: str, stream: bool) -> str:
    model = PROVIDERS[provider].model
    if provider == "gemini":
        return f"/v1beta/models/{model}:{'streamGenerateContent' if stream else 'generateContent'}"
    if provider == "anthropic":
        return "/v1/messages"
    if provider == "openai" and app == "responses":
        return "/v1/responses"
    return "/v1/chat/completions"


def assert_provider_request(rec: dict[str, Any], app: str, provider: str, stream: bool, app_key: str) -> None:
    p = PROVIDERS[provider]
    where = f"upstream request {dumps(rec)}"
    assert rec["path"] == expected_path(app, provider, stream), where
    headers, body = rec["headers"], rec["body"]
    assert isinstance(body, dict), where
    if provider == "anthropic":
        assert headers.get("x-api-key") == p.secret, where
        # The app's own version when it speaks Anthropic, else the gateway's.
        version = APP_ANTHROPIC_VERSION if app == "anthropic" else "2023-06-01"
        assert headers.get("anthropic-version") == version, where
        assert body["model"] == p.model and "messages" in body and body.get("max_tokens"), where
        assert body.get("stream", False) is stream, where
        assert [t["name"] for t in body.get("tools", [])] == ["get_weather"], where
    elif provider == "gemini":
        assert headers.get("x-goog-api-key") == p.secret, where
        assert ("alt=sse" in rec["query"].split("&")) is stream, where
        assert "contents" in body and "messages" not in body, where
        assert body.get("systemInstruction") or body.get("system_instruction"), where
    else:
        assert headers.get("authorization") == f"Bearer {p.secret}", where
        assert body["model"] == p.model, where
        assert body.get("stream", False) is stream, where
        assert ("input" if rec["path"] == "/v1/responses" else "messages") in body, where
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        if name in headers:
            assert headers[name].removeprefix("Bearer ") == p.secret, f"{name} is not the pool's: {where}"
    assert app_key not in json.dumps(rec), f"the app's key reached the upstream: {where}"
    assert rec["response_status"] == 200, where
    assert rec["response_usage"] is not None, f"the provider reported no usage: {where}"


def expected_cost(provider: str, usage: dict[str, int]) -> float:
    price_in, price_out, price_cached = PROVIDERS[provider].price
    return ((usage["input"] - usage["cached"]) * price_in + usage["cached"] * price_cached
            + usage["output"] * price_out) / 1e6


def assert_trace(trace: dict[str, Any], *, usage: dict[str, int], provider: str, api_format: str,
                 stream: bool, model: str | None = None, cost: float | None = None) -> None:
    p = PROVIDERS[provider]
    got = {k: trace[k] for k in ("input_tokens", "cached_tokens", "output_tokens", "status", "stream",
                                 "model", "provider", "api_format", "client_key_name", "error")}
    want = {"input_tokens": usage["input"], "cached_tokens": usage["cached"], "output_tokens": usage["output"],
            "status": 200, "stream": stream, "model": model or p.model, "provider": p.name,
            "api_format": api_format, "client_key_name": "app", "error": None}
    assert got == want, f"trace {dumps(trace)}"
    cost = expected_cost(provider, usage) if cost is None else cost
    assert trace["cost"] is not None and abs(trace["cost"] - cost) <= 1e-12 + 1e-9 * cost, (
        f"cost {trace['cost']!r} != {cost!r}")


# ---------------------------------------------------------------- the matrix

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("app", list(APPS))
def test_tool_round_trip(mgw: Gateway, app: str, provider: str, stream: bool) -> None:
    fmt, model = APPS[app], PROVIDERS[provider].model
    turns = fmt.run(mgw, model, stream)

    # What the SDK parsed.
    first, second = turns
    assert first.tool == ("get_weather", {"city": "Paris"}), first
    assert not first.text, first
    assert second.tool is None, second
    if app == "gemini" and provider != "gemini":
        # The function's response object may reach a non-Gemini provider as
        # its JSON text.
        assert second.text and second.text.startswith("mock reply: tool said ") and TOOL_RESULT in second.text, second
    else:
        assert second.text == REPLY, second
    assert (first.stop, second.stop) == fmt.stops, turns
    ids = [t.request_id for t in turns]
    assert all(ids) and len(set(ids)) == 2, f"request ids {ids}"

    # What the provider received, in its own format, with its own credential.
    recs = mgw.mock.provider_requests()
    assert len(recs) == 2, dumps(recs)
    for rec in recs:
        assert_provider_request(rec, app, provider, stream, mgw.app_key)
    reported = [normalized_usage(r["response_usage"]) for r in recs]
    assert reported[0] == CALL_USAGE, dumps(recs[0])
    if not (app == "gemini" and provider != "gemini"):
        assert reported[1] == REPLY_USAGE, dumps(recs[1])

    # What the app was told about its usage: the provider's counts.
    for turn, usage in zip(turns, reported):
        if app == "chat" and stream:
            assert turn.usage is None
        else:
            assert turn.usage == usage, f"the app was told {turn.usage}, the provider reported {usage}"

    # What was recorded: the provider's counts, once.
    for trace, usage in zip(mgw.wait_traces(ids), reported):
        assert_trace(trace, usage=usage, provider=provider, api_format=fmt.api_format, stream=stream)


# ---------------------------------------------------------------- native endpoints

def test_anthropic_count_tokens(mgw: Gateway) -> None:
    count = mgw.anthropic_client().messages.count_tokens(
        model="claude-model", system=SYSTEM, messages=[{"role": "user", "content": QUESTION}])
    assert count.input_tokens == 11
    [rec] = mgw.mock.provider_requests()
    assert rec["path"] == "/v1/messages/count_tokens"
    assert rec["headers"].get("x-api-key") == PROVIDERS["anthropic"].secret
    assert rec["body"]["messages"] == [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_anthropic_cache_writes_are_billed_above_the_input_price(mgw: Gateway, stream: bool) -> None:
    """Anthropic bills a prompt-cache write at 1.25x the input price (5
    minutes) or 2x (1 hour). The app sees the mock's counts as they came; the
    trace's cost carries the surcharge (it billed writes as plain input)."""
    client = mgw.anthropic_client()
    content = [
        {"type": "text", "text": "a document of six words here", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "kept for an hour", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "text", "text": "Summarize it"},
    ]
    args = dict(model="claude-model", max_tokens=64, system=SYSTEM,
                messages=[{"role": "user", "content": content}])
    if stream:
        with client.messages.stream(**args) as st:
            msg = st.get_final_message()
            request_id = st.response.headers.get("x-request-id")
    else:
        raw = client.messages.with_raw_response.create(**args)
        msg, request_id = raw.parse(), raw.headers.get("x-request-id")
    u = msg.usage
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens, u.input_tokens) == (5, 10, 2)
    assert (u.cache_creation.ephemeral_5m_input_tokens, u.cache_creation.ephemeral_1h_input_tokens) == (6, 4)
    [trace] = mgw.wait_traces([request_id])
    price_in, price_out, price_cached = PROVIDERS["anthropic"].price
    want = (2 * price_in + 5 * price_cached + 6 * price_in * 1.25 + 4 * price_in * 2
            + u.output_tokens * price_out) / 1e6
    assert (trace["input_tokens"], trace["cached_tokens"]) == (17, 5)
    assert abs(trace["cost"] - want) <= 1e-12, f"cost {trace['cost']!r} != {want!r}"


def test_gemini_count_tokens(mgw: Gateway) -> None:
    resp = mgw.genai_client().models.count_tokens(model="gemini-model", contents=QUESTION)
    assert resp.total_tokens == 6
    [rec] = mgw.mock.provider_requests()
    assert rec["path"] == "/v1beta/models/gemini-model:countTokens"
    assert rec["headers"].get("x-goog-api-key") == PROVIDERS["gemini"].secret


@pytest.mark.parametrize("provider", ["openai", "compat"])
def test_openai_embeddings(mgw: Gateway, provider: str) -> None:
    model = EMBED_MODELS[provider]
    resp = mgw.client().embeddings.with_raw_response.create(model=model, input=["one two", "three"])
    parsed = resp.parse()
    assert [len(d.embedding) for d in parsed.data] == [8, 8]
    assert parsed.usage.prompt_tokens == 3
    [rec] = mgw.mock.provider_requests()
    assert rec["path"] == "/v1/embeddings"
    assert rec["headers"]["authorization"] == f"Bearer {PROVIDERS[provider].secret}"
    [trace] = mgw.wait_traces([resp.headers["x-request-id"]])
    assert_trace(trace, usage={"input": 3, "cached": 0, "output": 0}, provider=provider,
                 api_format="openai", stream=False, model=model, cost=3 * EMBED_PRICE / 1e6)


def test_gemini_embeddings(mgw: Gateway) -> None:
    # The SDK's embed_content calls :batchEmbedContents; google-genai 3.x sends
    # a list of strings as the parts of ONE content, so one embedding returns.
    resp = mgw.genai_client().models.embed_content(model="gemini-embed", contents=["one two", "three"])
    assert [len(e.values) for e in resp.embeddings] == [8]
    batch_id = resp.sdk_http_response.headers.get("x-request-id")
    # :embedContent, raw, with the key in the query.
    raw = json.dumps({"content": {"parts": [{"text": "one two"}, {"text": "three"}]}}).encode()
    r = httpx.post(f"{mgw.dp_url}/v1beta/models/gemini-embed:embedContent?key={mgw.app_key}",
                   content=raw, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["embedding"]["values"] == pytest.approx(resp.embeddings[0].values)
    recs = mgw.mock.provider_requests()
    assert [rec["path"] for rec in recs] == ["/v1beta/models/gemini-embed:batchEmbedContents",
                                             "/v1beta/models/gemini-embed:embedContent"]
    for rec in recs:
        assert rec["headers"].get("x-goog-api-key") == PROVIDERS["gemini"].secret
        assert mgw.app_key not in json.dumps(rec)
    # Gemini's API reports no usage for embeddings: each is charged the
    # prompt's estimate (a token per four bytes of the body), not nothing.
    batch, single = mgw.wait_traces([batch_id, r.headers["x-request-id"]])
    estimate = -(-len(raw) // 2) // 2
    assert_trace(single, usage={"input": estimate, "cached": 0, "output": 0}, provider="gemini",
                 api_format="gemini", stream=False, model="gemini-embed", cost=estimate * EMBED_PRICE / 1e6)
    assert batch["input_tokens"] > 0 and batch["output_tokens"] == 0, batch
    assert batch["cost"] == pytest.approx(batch["input_tokens"] * EMBED_PRICE / 1e6)
    # A batch whose requests name another model than the URL's, which the
    # key was checked and priced for, is refused in Gemini's shape and
    # never reaches the provider.
    sneaky = {"requests": [{"model": "models/gemini-embed", "content": {"parts": [{"text": "a"}]}},
                           {"model": "models/gemini-model", "content": {"parts": [{"text": "b"}]}}]}
    r = httpx.post(f"{mgw.dp_url}/v1beta/models/gemini-embed:batchEmbedContents", json=sneaky,
                   headers={"x-goog-api-key": mgw.app_key}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT" and "requests[1].model" in r.json()["error"]["message"]
    assert len(mgw.mock.provider_requests()) == 2


ROUTED = {p.model for p in PROVIDERS.values()}


def test_model_lists_in_each_sdk_shape(mgw: Gateway) -> None:
    openai_ids = {m.id for m in mgw.client().models.list()}
    assert ROUTED <= openai_ids, openai_ids

    page = mgw.anthropic_client().models.list()
    assert all(m.type == "model" for m in page.data)
    assert ROUTED <= {m.id for m in page.data}

    names = {m.name for m in mgw.genai_client().models.list()}
    assert {f"models/{m}" for m in ROUTED} <= names, names

    r = httpx.get(f"{mgw.dp_url}/v1beta/models", params={"key": mgw.app_key}, timeout=30)
    assert r.status_code == 200, r.text
    models = r.json()["models"]
    assert {f"models/{m}" for m in ROUTED} <= {m["name"] for m in models}
    assert all(m["supportedGenerationMethods"] for m in models)
    r = httpx.get(f"{mgw.dp_url}/v1beta/models/gemini-model", headers={"x-goog-api-key": mgw.app_key}, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == "models/gemini-model", r.text
    assert mgw.mock.provider_requests() == []


def test_app_keys_where_each_sdk_may_put_them(mgw: Gateway) -> None:
    body = {"model": "claude-model", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{mgw.dp_url}/v1/messages", json=body, timeout=30,
                   headers={"x-api-key": mgw.app_key, "anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    assert r.json()["content"][0]["text"] == "mock reply: hi"
    r = httpx.post(f"{mgw.dp_url}/v1beta/models/gemini-model:generateContent", params={"key": mgw.app_key},
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == "mock reply: hi"
    recs = mgw.mock.provider_requests()
    assert len(recs) == 2, recs
    for rec in recs:
        assert mgw.app_key not in json.dumps(rec)


# ---------------------------------------------------------------- errors in the caller's shape

def test_unknown_model_in_each_format(mgw: Gateway) -> None:
    name = "no-such-model-x1"
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as oe:
        mgw.client().chat.completions.create(model=name, messages=msgs)
    assert oe.value.code == "model_not_found" and name in oe.value.message
    with pytest.raises(openai.NotFoundError) as oe:
        mgw.client().responses.create(model=name, input="hi")
    assert name in oe.value.message
    with pytest.raises(anthropic.NotFoundError) as ae:
        mgw.anthropic_client().messages.create(model=name, max_tokens=5, messages=msgs)
    assert ae.value.body["type"] == "error"
    assert ae.value.body["error"]["type"] == "not_found_error"
    assert name in ae.value.body["error"]["message"]
    with pytest.raises(genai_errors.ClientError) as ge:
        mgw.genai_client().models.generate_content(model=name, contents="hi")
    assert (ge.value.code, ge.value.status) == (404, "NOT_FOUND")
    assert name in ge.value.message
    assert mgw.mock.provider_requests() == []


def test_wrong_key_in_each_format(mgw: Gateway) -> None:
    bad = "sk-aigw-not-a-real-key-000"
    with pytest.raises(anthropic.AuthenticationError) as ae:
        mgw.anthropic_client(bad).messages.create(model="claude-model", max_tokens=5,
                                                  messages=[{"role": "user", "content": "hi"}])
    assert ae.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(genai_errors.ClientError) as ge:
        mgw.genai_client(bad).models.generate_content(model="gemini-model", contents="hi")
    assert (ge.value.code, ge.value.status) == (401, "UNAUTHENTICATED")
    assert mgw.mock.provider_requests() == []


@pytest.mark.parametrize("provider", ["openai", "compat"])
def test_untranslatable_field_is_a_400_naming_it(mgw: Gateway, provider: str) -> None:
    """What changes the answer and the target cannot express is refused,
    named; a mere sampling hint the target lacks (`top_k`) is dropped and
    named in `x-aigw-dropped-fields`."""
    model = PROVIDERS[provider].model
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    with pytest.raises(anthropic.BadRequestError) as ae:
        mgw.anthropic_client().messages.create(model=model, max_tokens=5,
                                               messages=[{"role": "user", "content": [doc]}])
    assert ae.value.body["error"]["type"] == "invalid_request_error"
    assert "messages[0].content[0].document" in ae.value.body["error"]["message"]

    with pytest.raises(genai_errors.ClientError) as ge:
        mgw.genai_client().models.generate_content(
            model=model, contents="hi", config=gtypes.GenerateContentConfig(candidate_count=2))
    assert (ge.value.code, ge.value.status) == (400, "INVALID_ARGUMENT")
    assert "generationConfig.candidateCount" in ge.value.message, ge.value.message
    assert mgw.mock.provider_requests() == []

    # A seed OpenAI has too travels (as `seed`).
    r = mgw.genai_client().models.generate_content(
        model=model, contents="hi", config=gtypes.GenerateContentConfig(seed=5))
    assert r.text == "mock reply: hi"
    [sent] = mgw.mock.provider_requests()
    assert sent["body"]["seed"] == 5, sent["body"]
    mgw.mock.clear()

    # (anthropic SDK 2.x has no top_k argument any more; the API still takes it.)
    raw = mgw.anthropic_client().messages.with_raw_response.create(
        model=model, max_tokens=5, extra_body={"top_k": 5}, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-aigw-dropped-fields"] == "top_k"
    assert raw.parse().content[0].text == "mock reply: hi"
    [sent] = mgw.mock.provider_requests()
    assert "top_k" not in sent["body"]
    mgw.mock.clear()
    # Named as the app spells it: a Gemini app's `topK` (Gemini CLI sends
    # one with every request).
    r = mgw.genai_client().models.generate_content(
        model=model, contents="hi", config=gtypes.GenerateContentConfig(top_k=40))
    assert r.sdk_http_response.headers["x-aigw-dropped-fields"] == "generationConfig.topK"
    [sent] = mgw.mock.provider_requests()
    assert "top_k" not in sent["body"]


def interleaved_calls_stream() -> list[str]:
    """An OpenAI-compatible vendor's stream of two parallel calls whose
    argument deltas interleave (each names its call by `index`, which the
    format allows), then a finish."""
    def chunk(calls: list[dict[str, Any]] | None = None, finish: str | None = None) -> str:
        delta = {"tool_calls": calls} if calls else {}
        body = {"id": "chatcmpl-il", "object": "chat.completion.chunk", "created": 1, "model": "compat-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"
    start = lambda i, name: {"index": i, "id": f"call_{name}", "type": "function",  # noqa: E731
                             "function": {"name": name, "arguments": ""}}
    args = lambda i, a: {"index": i, "function": {"arguments": a}}  # noqa: E731
    return [chunk([start(0, "fa")]), chunk([start(1, "fb")]),
            chunk([args(1, '{"y":'), args(0, '{"x":1}')]), chunk([args(1, "2}")]),
            chunk(finish="tool_calls"), "data: [DONE]\n\n"]


def test_interleaved_parallel_calls_reach_the_official_sdks_whole(mgw: Gateway) -> None:
    """The google-genai and openai (Responses) SDKs, reading a translated
    stream of two calls whose argument deltas the vendor interleaved, get
    each call with its own arguments (before, the first call's were lost)."""
    model = PROVIDERS["compat"].model
    decl = lambda n: gtypes.FunctionDeclaration(  # noqa: E731
        name=n, parameters={"type": "object", "properties": {"x": {"type": "integer"}}})
    mgw.mock.add_fault(stream_chunks=interleaved_calls_stream())
    chunks = list(mgw.genai_client().models.generate_content_stream(
        model=model, contents="call both",
        config=gtypes.GenerateContentConfig(
            tools=[gtypes.Tool(function_declarations=[decl("fa"), decl("fb")])],
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True))))
    calls = [(p.function_call.name, p.function_call.args) for c in chunks for cand in (c.candidates or [])
             if cand.content for p in cand.content.parts or [] if p.function_call]
    assert calls == [("fa", {"x": 1}), ("fb", {"y": 2})], calls

    mgw.mock.add_fault(stream_chunks=interleaved_calls_stream())
    tools = [{"type": "function", "name": n, "parameters": {"type": "object", "properties": {}}}
             for n in ("fa", "fb")]
    with mgw.client().responses.stream(model=model, input="call both", tools=tools) as st:
        resp = st.get_final_response()
    got = [(o.name, json.loads(o.arguments)) for o in resp.output if o.type == "function_call"]
    assert got == [("fa", {"x": 1}), ("fb", {"y": 2})], got


def call_app(app: str, gw: Gateway, model: str) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    if app == "chat":
        gw.client().chat.completions.create(model=model, messages=msgs)
    elif app == "anthropic":
        gw.anthropic_client().messages.create(model=model, max_tokens=5, messages=msgs)
    else:
        gw.genai_client().models.generate_content(model=model, contents="hi")


# An upstream's refusal reaches the app in the app's format.
UPSTREAM_400 = {
    "chat": (openai.BadRequestError, lambda e: e.message),
    "anthropic": (anthropic.BadRequestError, lambda e: e.body["error"]["message"]),
    "gemini": (genai_errors.ClientError, lambda e: e.message),
}


@pytest.mark.parametrize("app,provider", [("chat", "anthropic"), ("anthropic", "gemini"),
                                          ("gemini", "openai"), ("anthropic", "anthropic")])
def test_upstream_error_in_the_callers_shape(mgw: Gateway, app: str, provider: str) -> None:
    mgw.mock.add_fault(status=400, message="mock refuses this prompt", model=PROVIDERS[provider].model)
    exc_type, message = UPSTREAM_400[app]
    with pytest.raises(exc_type) as exc:
        call_app(app, mgw, PROVIDERS[provider].model)
    assert "mock refuses this prompt" in message(exc.value)
    if app == "gemini":
        assert (exc.value.code, exc.value.status) == (400, "INVALID_ARGUMENT")
    if app == "anthropic":
        assert exc.value.body["type"] == "error"
    assert PROVIDERS[provider].secret not in str(exc.value)


OVERLOADED_EVENT = ('event: error\ndata: {"type":"error","error":'
                    '{"type":"overloaded_error","message":"Overloaded"}}\n\n')


@pytest.mark.parametrize("app", ["anthropic", "chat"])
def test_a_stream_opening_overloaded_is_retried_by_the_official_sdk(mgw: Gateway, app: str) -> None:
    """Anthropic answers `200` and opens the stream with `overloaded_error`:
    the gateway answers before any byte with 529 (503 for an OpenAI app),
    which the official SDK retries on its own, and the retry is served."""
    model = PROVIDERS["anthropic"].model
    mgw.mock.add_fault(stream_body=OVERLOADED_EVENT, times=1)
    hi = [{"role": "user", "content": "hi"}]
    if app == "anthropic":
        client = mgw.anthropic_client().with_options(max_retries=2)
        with client.messages.stream(model=model, max_tokens=20, messages=hi) as s:
            text = s.get_final_message().content[0].text
    else:
        chat = mgw.client().with_options(max_retries=2)
        stream = chat.chat.completions.create(model=model, messages=hi, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "mock reply: hi"
    assert len(mgw.mock.provider_requests()) == 2, "the overloaded attempt, then the retry"

    # Without the SDK's retry, the app sees the status in its own format.
    mgw.mock.add_fault(stream_body=OVERLOADED_EVENT, times=1)
    if app == "anthropic":
        with pytest.raises(anthropic.APIStatusError) as ae:
            with mgw.anthropic_client().messages.stream(model=model, max_tokens=20, messages=hi) as s:
                s.get_final_message()
        assert ae.value.status_code == 529
        assert ae.value.body["error"]["type"] == "overloaded_error"
    else:
        with pytest.raises(openai.InternalServerError) as oe:
            list(mgw.client().chat.completions.create(model=model, messages=hi, stream=True))
        assert oe.value.status_code == 503
