"""admin-web's alert webhooks (`/api/webhooks`) and the audit log's filters
(`/api/audit`) against the real control plane: the secret goes in and
never comes out (not in an answer, a list, an error or the audit log), an
operator sees a URL's origin only and keeps the stored URL by sending it
back, a viewer changes nothing, the control plane's refusals are the API's
JSON errors, and the audit log filters by kind, actor and time."""

from __future__ import annotations

import json
from typing import Iterator

import httpx
import pytest

from harness import Gateway
from ui_stack import AdminWeb

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

SECRET = "whsec-rest-0123456789abcdef"
# Chat services put their own secret in the path.
URL = "https://hooks.example.invalid/services/T000/B000/path-secret-XYZ"


@pytest.fixture
def web(stack: Gateway) -> Iterator[AdminWeb]:
    w = AdminWeb(stack)
    yield w
    w.stop()


def error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.json()["error"]["code"] == code, r.text
    return r.json()["error"]["message"]


def test_webhooks_through_admin_web_keep_their_secret(stack: Gateway, web: AdminWeb) -> None:
    olga = web.session("olga", web.create_user("olga", "operator"))
    vera = web.session("vera", web.create_user("vera", "viewer"))

    # Created by an admin (the bootstrap token); the answer holds no secret.
    r = web.api.put("/webhooks/ops", json={"url": URL, "secret": SECRET},
                    headers={"if-none-match": "*"})
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True and SECRET not in r.text
    [hook] = web.call("GET", "/webhooks")["webhooks"]
    assert hook == {"name": "ops", "url": URL, "secret_hint": "whse…cdef"}, hook

    # An operator sees the URL's origin only, and no secret.
    r = olga.get("/api/webhooks")
    assert r.status_code == 200, r.text
    assert r.json()["webhooks"] == [
        {"name": "ops", "url": "https://hooks.example.invalid/…", "secret_hint": "whse…cdef"}]
    assert "path-secret" not in r.text and SECRET not in r.text
    # Sending back what it was shown, without a secret, keeps both.
    r = olga.put("/api/webhooks/ops", json={"url": "https://hooks.example.invalid/…", "secret": ""})
    assert r.status_code == 200 and r.json()["changed"] is False, r.text
    assert web.call("GET", "/webhooks")["webhooks"] == [hook]

    # A viewer reads (masked) and changes nothing.
    r = vera.get("/api/webhooks")
    assert r.status_code == 200 and "path-secret" not in r.text and SECRET not in r.text, r.text
    error(vera.put("/api/webhooks/ops", json={"url": URL, "secret": "viewer-secret-1234"}),
          403, "permission_denied")
    error(vera.delete("/api/webhooks/ops"), 403, "permission_denied")
    error(vera.put("/api/webhooks/mine", json={"url": URL, "secret": "viewer-secret-1234"}),
          403, "permission_denied")

    # The control plane's refusals, as JSON errors that name the `url`
    # field and echo no secret, nor any of the URL (its path may be one).
    for body, says in [
        ({"url": "ftp://hooks.example.invalid/x/path-secret", "secret": SECRET},
         "url must start with http:// or https://"),
        ({"url": "https://ops:" + SECRET + "@hooks.example.invalid/x", "secret": SECRET},
         "url must not carry credentials"),
        ({"url": URL + " ", "secret": SECRET}, "url must not contain spaces"),
        ({"url": URL + "?token=a b", "secret": SECRET}, "url must not contain spaces"),
        ({"url": "https://hooks.example.invalid:0/path-secret", "secret": SECRET},
         "url has an invalid port"),
        ({"url": "https://hooks.example.invalid/…", "secret": SECRET}, "hidden from your role"),
        ({"url": "https://hooks.example.invalid/x", "secret": ""}, "a secret is required"),
        ({"url": "https://hooks.example.invalid/x", "secret": "two words"}, "visible ASCII"),
        ({"url": "", "secret": SECRET}, "url is required"),
    ]:
        r = web.api.put("/webhooks/new-one", json=body)
        message = error(r, 400, "invalid_argument")
        assert says in message and "base_url" not in message, message
        assert SECRET not in r.text and "path-secret" not in r.text, r.text
        assert "hooks.example" not in message, message
    r = web.api.put("/webhooks/ops", json={"url": URL, "secret": "x" * 20},
                    headers={"if-none-match": "*"})
    assert error(r, 412, "already_exists") == "a webhook named ops already exists"
    assert web.call("GET", "/webhooks")["webhooks"] == [hook], "a refused change changed it"

    # An operator changes the URL (typed whole, the receiver's token in its
    # query) and rotates the secret: the query is shown to admins only.
    with_query = "https://alerts.example.invalid/aigw?token=query-secret-123"
    r = olga.put("/api/webhooks/ops", json={"url": with_query,
                                            "secret": "whsec-rotated-00000000wxyz"})
    assert r.status_code == 200 and r.json()["changed"] is True, r.text
    assert web.call("GET", "/webhooks")["webhooks"] == [
        {"name": "ops", "url": with_query, "secret_hint": "whse…wxyz"}]
    r = olga.get("/api/webhooks")
    assert r.json()["webhooks"][0]["url"] == "https://alerts.example.invalid/…", r.text
    assert "query-secret" not in r.text
    r = olga.delete("/api/webhooks/ops")
    assert r.status_code == 200 and r.json() == {"deleted": True}, r.text
    assert web.call("GET", "/webhooks")["webhooks"] == []
    assert web.call("DELETE", "/webhooks/ops") == {"deleted": False}

    # The audit log: the webhook's changes by kind, never its secret or path.
    audit = web.call("GET", "/audit", params={"page_size": 500})["entries"]
    assert SECRET not in json.dumps(audit) and "path-secret" not in json.dumps(audit)
    assert "query-secret" not in json.dumps(audit)
    hooks = web.call("GET", "/audit", params={"object_kind": "webhook"})["entries"]
    assert [(e["actor"], e["action"]) for e in reversed(hooks)] == [
        ("bootstrap", "create"), ("user:olga", "update"), ("user:olga", "delete")], hooks
    assert {e["object_name"] for e in hooks} == {"ops"}
    assert hooks[-1]["detail"] == "host=hooks.example.invalid secret given", hooks[-1]
    # ... by actor too, and by time: `until_ms` is exclusive, `since_ms` not.
    mine = web.call("GET", "/audit", params={"object_kind": "webhook", "actor": "user:olga"})
    assert [e["action"] for e in mine["entries"]] == ["delete", "update"]
    first = hooks[-1]["at_ms"]
    before = web.call("GET", "/audit", params={"object_kind": "webhook", "until_ms": first})
    assert before["entries"] == []
    since = web.call("GET", "/audit", params={"object_kind": "webhook", "since_ms": first})
    assert len(since["entries"]) == 3
    # Paging: one entry a page, three pages, then none.
    seen, token = [], ""
    while True:
        page = web.call("GET", "/audit", params={"object_kind": "webhook", "page_size": 1,
                                                  "page_token": token})
        seen += [e["id"] for e in page["entries"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [e["id"] for e in hooks]
