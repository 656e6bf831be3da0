"""Bad input gets a clear 4xx in OpenAI's error shape, with an
`x-request-id`, and reaches no upstream."""

from __future__ import annotations

import json
import socket
from typing import Any, Iterator

import httpx
import openai
import pytest

from harness import MODEL, POOL_SECRET, Gateway, gateway_config

# The database backend is irrelevant here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

MAX_BODY = 8192
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def small(stack: Gateway) -> Iterator[Gateway]:
    """The spine with a small body limit and a second, restricted client key;
    one good call made (so the config is known to be in force), then the
    mock's record cleared."""
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}"},
        {"name": "restricted", "key": "${E2E_RESTRICTED_KEY}", "models": ["mock-*"]},
    ]), env={"E2E_RESTRICTED_KEY": RESTRICTED_KEY})
    stack.start_data_plane(AIGW_MAX_BODY_BYTES=str(MAX_BODY))
    stack.wait_key_known()
    ok = stack.client().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert ok.choices[0].message.content == "mock reply: hello"
    stack.mock.clear()
    yield stack
    # Whatever the test sent, nothing reached the upstream.
    assert stack.mock.requests() == [], "bad input reached the upstream"


RESTRICTED_KEY = "sk-aigw-e2e-restricted-0123456789abcdef"


def post_raw(gw: Gateway, body: bytes, key: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gw.dp_url + "/v1/chat/completions", content=body, headers=headers, timeout=30)


def assert_openai_error(r: httpx.Response, status: int, *, code: str | None = None,
                        kind: str | None = "invalid_request_error") -> dict[str, Any]:
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    assert r.headers.get("x-request-id"), "error without x-request-id"
    assert r.headers.get("content-type", "").startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    if kind is not None:
        assert err["type"] == kind, err
    if code is not None:
        assert err["code"] == code, err
    assert POOL_SECRET not in r.text
    return err


def assert_sdk_error(e: openai.APIStatusError, status: int, *, code: str | None = None) -> None:
    assert e.status_code == status
    assert e.request_id, "error without x-request-id"
    body = e.body
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert e.code == code
    assert POOL_SECRET not in e.response.text


def test_malformed_json(small: Gateway) -> None:
    r = post_raw(small, b'{"model": "gpt-4o-mini", "messages": [', small.app_key)
    assert_openai_error(r, 400)


def test_body_not_an_object(small: Gateway) -> None:
    r = post_raw(small, b'["gpt-4o-mini"]', small.app_key)
    assert_openai_error(r, 400)


def test_missing_model(small: Gateway) -> None:
    r = post_raw(small, b'{"messages": [{"role": "user", "content": "hi"}]}', small.app_key)
    err = assert_openai_error(r, 400)
    assert "model" in err["message"].lower()


def test_unknown_model(small: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        small.client().chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert_sdk_error(exc.value, 404, code="model_not_found")
    assert "no-such-model" in exc.value.message


def test_missing_key(small: Gateway) -> None:
    r = post_raw(small, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}', None)
    assert_openai_error(r, 401, code="invalid_api_key")


def test_wrong_key(small: Gateway) -> None:
    client = small.client(api_key="sk-aigw-this-key-does-not-exist")
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert_sdk_error(exc.value, 401, code="invalid_api_key")
    assert exc.value.type == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)


def test_model_not_allowed_for_key(small: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as exc:
        small.client(api_key=RESTRICTED_KEY).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert_sdk_error(exc.value, 403)


def test_oversized_body(small: Gateway) -> None:
    big = "word " * (MAX_BODY // 5 + 100)
    with pytest.raises(openai.APIStatusError) as exc:
        small.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": big}])
    assert_sdk_error(exc.value, 413)
    # Raw, without a content-length the gateway could check up front.
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        for _ in range(MAX_BODY // 1000 + 2):
            yield b"x" * 1000
        yield b'"}]}'

    r = httpx.post(small.dp_url + "/v1/chat/completions", content=chunks(),
                   headers={"authorization": f"Bearer {small.app_key}",
                            "content-type": "application/json"}, timeout=30)
    assert_openai_error(r, 413, kind=None)


def test_headers_too_large_for_http(small: Gateway) -> None:
    """Headers past what the HTTP parser takes (hyper answers these before the
    gateway's handler runs) still get a 431 with an `x-request-id` and an
    error body, as httpx sees it."""
    headers = {"authorization": f"Bearer {small.app_key}",
               "x-padding": "p" * (1024 * 1024)}
    try:
        r = httpx.post(small.dp_url + "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES},
                       headers=headers, timeout=30)
    except httpx.TransportError as e:  # the answer lost to a reset, if the OS resets first
        pytest.fail(f"no answer to oversized headers: {e!r}")
    assert_openai_error(r, 431)
    assert r.headers.get("connection") == "close"


def test_unparsable_requests_are_answered_in_the_paths_format(small: Gateway) -> None:
    """A URL or headers too large for the HTTP parser are answered before
    any handler reads the request, yet in the error shape of the SDK whose
    path the request line names."""
    # (httpx refuses to send a URL this long: written by hand.)
    host, port = small.dp_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /v1/messages?x=" + b"a" * (200 * 1024) + b" HTTP/1.1\r\nhost: gw\r\n"
                  + b"x-api-key: " + small.app_key.encode() + b"\r\ncontent-length: 2\r\n\r\n{}")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 ") and b"\r\nx-request-id: " in head, head
    body = json.loads(payload)
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    r = httpx.post(small.dp_url + f"/v1beta/models/{MODEL}:generateContent", json={},
                   headers={"x-goog-api-key": small.app_key, "x-padding": "p" * (1024 * 1024)}, timeout=30)
    assert r.status_code == 431 and r.headers.get("x-request-id"), r.text[:300]
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and "headers are too large" in err["message"], err
