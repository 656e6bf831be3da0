"""The upstream wire against servers no one here wrote: Debian's nginx as a
strict HTTP/1.1 front to the mock (it answers a request line without `Host`
with 400), and nginx serving HTTPS with a certificate from a test CA, which
the data plane trusts only through AIGW_UPSTREAM_CA_FILE."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness import MODEL, POOL_SECRET, Gateway, gateway_config
from third_party import Nginx, Pki

MESSAGES = [{"role": "user", "content": "Hello through nginx"}]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
def nginx(stack: Gateway, pki: Pki, tmp_path: Path) -> Iterator[Nginx]:
    port = int(stack.mock.addr.rsplit(":", 1)[1])
    n = Nginx(tmp_path / "nginx", port, pki)
    yield n
    n.stop()


def front(stack: Gateway, base_url: str) -> None:
    config = gateway_config(base_url)
    stack.apply_ok(config)


def chat(gw: Gateway) -> httpx.Response:
    return httpx.post(gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"},
                      json={"model": MODEL, "messages": MESSAGES})


def test_requests_through_nginx_are_served_and_traced(stack: Gateway, nginx: Nginx) -> None:
    front(stack, nginx.url)
    stack.start_data_plane()
    stack.wait_key_known()
    for stream in (False, True):
        r = httpx.post(stack.dp_url + "/v1/chat/completions", timeout=30,
                       headers={"authorization": f"Bearer {stack.app_key}"},
                       json={"model": MODEL, "messages": MESSAGES, "stream": stream})
        assert r.status_code == 200, r.text
        [trace] = stack.wait_traces([r.headers["x-request-id"]])
        assert trace["status"] == 200 and trace["input_tokens"] > 0, trace
    # nginx saw origin-form requests it accepted, and the mock got them
    # through it with the pool's key.
    log = nginx.access_log()
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in log, log
    assert " 400 " not in log, log
    recs = stack.mock.chat_requests()
    assert len(recs) == 2
    assert all(r["headers"]["authorization"] == f"Bearer {POOL_SECRET}" for r in recs)


def test_an_upstream_redirect_is_not_followed(stack: Gateway, nginx: Nginx) -> None:
    """A redirect would take the pool's key to another host: the gateway
    does not follow it and does not relay it, the app gets a 502."""
    front(stack, nginx.url + "/moved")
    stack.start_data_plane()
    stack.wait_key_known()
    r = chat(stack)
    assert r.status_code == 502, r.text
    assert "elsewhere" not in r.text
    assert "location" not in r.headers
    [trace] = stack.wait_traces([r.headers["x-request-id"]])
    assert trace["status"] == 502 and trace["error"] == "upstream_error", trace
    assert '"POST /moved/v1/chat/completions HTTP/1.1" 302' in nginx.access_log()
    assert stack.mock.chat_requests() == []


def test_https_upstreams_need_their_ca(stack: Gateway, nginx: Nginx, pki: Pki) -> None:
    front(stack, nginx.tls_url)
    # Not trusted: a clear 502 in the app's format, no secret, still traced.
    stack.start_data_plane()
    stack.wait_key_known()
    r = chat(stack)
    assert r.status_code == 502, r.text
    err = r.json()["error"]
    assert "upstream" in err["message"] and POOL_SECRET not in r.text, err
    assert stack.mock.chat_requests() == []
    stack.dp.stop()  # type: ignore[union-attr]
    # Trusted through AIGW_UPSTREAM_CA_FILE: served over TLS, with SNI.
    stack.start_data_plane(AIGW_UPSTREAM_CA_FILE=str(pki.ca))
    stack.wait_key_known()
    r = chat(stack)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "mock reply: Hello through nginx"
    [trace] = stack.wait_traces([r.headers["x-request-id"]])
    assert trace["status"] == 200 and trace["provider"] == "mock"
    assert len(stack.mock.chat_requests()) == 1


def test_a_bad_upstream_ca_file_stops_the_data_plane_with_a_clear_error(stack: Gateway, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("nothing here")
    with pytest.raises(AssertionError, match="exited with 1") as e:
        stack.start_data_plane(AIGW_UPSTREAM_CA_FILE=str(bad))
    assert "not-a-ca.pem holds no certificate" in str(e.value)
