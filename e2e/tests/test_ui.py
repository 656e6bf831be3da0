"""The admin UI in a real browser (Debian's Chromium driven by
playwright-core) against the real binaries: an admin's whole journey from
an empty gateway to a served, logged and revoked key; an admin's alert
webhooks and the audit log's filters; the request log's filters changed
faster than the page is drawn; a viewer who can change nothing and
sees no secret; a member who sees only their own keys;
sign-in through a real OpenID Connect provider; sign-in over HTTPS behind
nginx with host-only cookies; accessibility (axe-core) on
every page; and the size of the JavaScript the first page load needs."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness import MODEL, POOL_SECRET, Gateway, eventually, gateway_config
from third_party import Nginx, Pki
from ui_stack import (SCREENSHOTS, AdminWeb, OidcServer, finish_browser_test, node,
                      run_browser_test, start_browser_test)

UI_DIR = Path(__file__).resolve().parents[2] / "admin-web" / "ui"

WEBHOOK_SECRET = "whsec-ui-0123456789abcdef"
WEBHOOK_PATH = "services/T000/B000/path-secret-ui"

# One backend is enough here: the UI reads through the same Admin API on
# both (test_admin_api.py and the Rust tests cover Postgres).
SQLITE = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def web(stack: Gateway) -> Iterator[AdminWeb]:
    """An empty gateway (no configuration) with a data plane and admin-web."""
    stack.start_data_plane()
    w = AdminWeb(stack)
    yield w
    w.stop()


def base_env(gw: Gateway, web: AdminWeb) -> dict[str, str]:
    return {
        "ADMIN_URL": web.url,
        "DP_URL": gw.dp_url,
        "MOCK_URL": gw.mock.url,
        "ADMIN_USER": "admin",
        "ADMIN_PASSWORD": gw.admin_password,
        "POOL_SECRET": POOL_SECRET,
        "MODEL": MODEL,
    }


@SQLITE
def test_admin_journey_from_empty_gateway_to_revoked_key(stack: Gateway, web: AdminWeb,
                                                          tmp_path: Path) -> None:
    out = run_browser_test("admin", base_env(stack, web), tmp_path / "artifacts")
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    # What the browser saw is what was stored: one trace for the SDK call,
    # with its tokens and cost, and the key refused once revoked.
    row = stack.db.trace(result["request_id"])
    assert row is not None and row["status"] == 200, row
    assert row["client_key_name"] == "ui-app"
    assert row["input_tokens"] == result["input_tokens"] and row["cost"] > 0
    revoked = stack.db.rows("SELECT revoked_at_ms FROM client_keys WHERE name = 'ui-app'")
    assert revoked[0]["revoked_at_ms"] > 0
    # The secret typed into the UI reached the upstream, and only there.
    auth = [r["headers"].get("authorization") for r in stack.mock.chat_requests()]
    assert f"Bearer {POOL_SECRET}" in auth, auth
    for name in ("login", "overview", "requests", "request-detail", "client-keys", "providers",
                 "credential-health", "people", "budgets", "config-as-code", "sign-in-settings",
                 "account", "overview-dark", "overview-phone"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5000, name


@SQLITE
def test_admin_signs_in_over_https_behind_nginx(stack: Gateway, web: AdminWeb, tmp_path: Path) -> None:
    """nginx ends TLS in front of admin-web as usually set up (`Host`
    rewritten to the backend's address, `X-Forwarded-Proto` set): a real
    browser signs in with `__Host-` cookies, makes a change, signs out."""
    front = Nginx(tmp_path / "nginx", int(web.url.rsplit(":", 1)[1]), Pki.create(tmp_path / "pki"),
                  forwarded_proto=True)
    try:
        env = {**base_env(stack, web), "ADMIN_URL": front.tls_url, "TRUST_SPKI": front.tls_spki()}
        run_browser_test("https", env, tmp_path / "artifacts")
    finally:
        front.stop()
    names = [r["name"] for r in stack.db.rows("SELECT name FROM client_keys")]
    assert "tls-app" in names, names


@SQLITE
def test_admin_manages_alert_webhooks_and_filters_the_audit_log(stack: Gateway, web: AdminWeb,
                                                                tmp_path: Path) -> None:
    # An operator's changes: 55 teams, more than a page of the audit log.
    olga = web.session("olga", web.create_user("olga", "operator"))
    for i in range(55):
        r = olga.put(f"/api/teams/t-{i:02}", json={"members": []})
        assert r.status_code == 200, r.text
    run_browser_test("webhooks", {**base_env(stack, web), "WEBHOOK_SECRET": WEBHOOK_SECRET},
                     tmp_path / "artifacts")
    # What the browser did is what the control plane recorded: the admin's
    # create, update and delete of the webhook, and its secret nowhere.
    hooks = web.call("GET", "/audit", params={"object_kind": "webhook"})["entries"]
    assert [(e["actor"], e["action"], e["object_name"]) for e in reversed(hooks)] == [
        ("user:admin", "create", "ops-alerts"), ("user:admin", "update", "ops-alerts"),
        ("user:admin", "delete", "ops-alerts")], hooks
    assert WEBHOOK_SECRET not in json.dumps(web.call("GET", "/audit", params={"page_size": 500}))
    assert web.call("GET", "/webhooks")["webhooks"] == []
    for name in ("alert-webhooks", "audit-log"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5000, name


@SQLITE
def test_requests_filters_changed_quickly_keep_each_other(stack: Gateway, web: AdminWeb,
                                                          tmp_path: Path) -> None:
    other_key = "sk-aigw-ui-other-key-000000001"
    stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}"}, {"name": "other", "key": other_key}]))
    stack.wait_key_known()
    stack.wait_key_known(other_key)
    # Three requests: only the first is of key app *and* model MODEL.
    ids = {}
    for name, key, model in [("both", stack.app_key, MODEL), ("other_model", stack.app_key, "gpt-4o"),
                             ("other_key", other_key, MODEL)]:
        r = stack.client(key).chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"hi from {name}"}])
        ids[name] = r.headers["x-request-id"]
    stack.wait_traces(list(ids.values()))
    run_browser_test("requests", {**base_env(stack, web), "BOTH_REQUEST_ID": ids["both"],
                                  "OTHER_MODEL_REQUEST_ID": ids["other_model"],
                                  "ALL_REQUEST_IDS": json.dumps(list(ids.values()))},
                     tmp_path / "artifacts")


@SQLITE
def test_viewer_changes_nothing_and_sees_no_secret(stack: Gateway, web: AdminWeb,
                                                   tmp_path: Path) -> None:
    stack.apply_ok(gateway_config(stack.mock.url))
    stack.wait_key_known()
    password = web.create_user("vera", "viewer")
    # A webhook whose URL carries a secret in its path, as chat services' do.
    web.call("PUT", "/webhooks/ops", json={"url": f"https://hooks.example.invalid/{WEBHOOK_PATH}",
                                           "secret": WEBHOOK_SECRET})
    hooks = web.call("GET", "/webhooks")
    before = web.call("GET", "/config/export")["yaml"]
    run_browser_test("viewer", {**base_env(stack, web), "VIEWER_PASSWORD": password,
                                "APP_KEY": stack.app_key, "WEBHOOK_SECRET": WEBHOOK_SECRET,
                                "WEBHOOK_PATH": WEBHOOK_PATH}, tmp_path / "artifacts")
    assert web.call("GET", "/webhooks") == hooks
    # Nothing changed, and the key still works.
    assert web.call("GET", "/config/export")["yaml"].split("\n", 1)[1] == before.split("\n", 1)[1]
    r = stack.client().chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content
    audit = web.call("GET", "/audit")["entries"]
    assert not [e for e in audit if e["actor"] == "user:vera" and e["action"] != "login"], audit


@SQLITE
def test_the_live_overview_comes_back_after_the_control_plane_restarts(
        stack: Gateway, web: AdminWeb, tmp_path: Path) -> None:
    stack.apply_ok(gateway_config(stack.mock.url))
    stack.wait_key_known()
    signals = tmp_path / "signals"
    signals.mkdir()
    artifacts = tmp_path / "artifacts"
    started = time.monotonic()
    browser = start_browser_test("live", {**base_env(stack, web), "APP_KEY": stack.app_key,
                                          "SIGNAL_DIR": str(signals)}, artifacts)
    try:
        def live() -> None:
            assert (signals / "live").exists() or browser.poll() is not None
        eventually(live, timeout=90, what="the browser sees the live overview")
        assert browser.poll() is None, "the browser test ended early"
        stack.stop_control_plane()
        (signals / "stopped").touch()
        # Long enough for the browser's reconnects to be refused (admin-web
        # answers 503 while its control plane is away).
        time.sleep(4)
        stack.start_control_plane()
        (signals / "restarted").touch()

        def logged_out() -> None:
            assert (signals / "logged-out").exists() or browser.poll() is not None
        eventually(logged_out, timeout=120, what="the browser signs out")
        stack.stop_control_plane()
        time.sleep(2)
        stack.start_control_plane()
    finally:
        finish_browser_test(browser, "live", artifacts, started)


@SQLITE
def test_member_sees_and_manages_only_their_own_keys(stack: Gateway, web: AdminWeb,
                                                     tmp_path: Path) -> None:
    stack.apply_ok(gateway_config(stack.mock.url))
    stack.wait_key_known()
    other_call = stack.client().chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "not mia's"}])
    other_request = other_call.headers["x-request-id"]
    stack.wait_traces([other_request])
    password = web.create_user("mia", "member")
    other = web.create_user("otto", "member")
    otto = web.session("otto", other)
    r = otto.put("/api/client-keys/otto-key", json={"models": []})
    assert r.status_code == 200 and r.json()["generated_key"], r.text
    run_browser_test("member", {**base_env(stack, web), "MEMBER_PASSWORD": password,
                                "OTHER_REQUEST_ID": other_request}, tmp_path / "artifacts")
    keys = {k["name"]: k["owner"] for k in web.call("GET", "/client-keys")["client_keys"]}
    assert keys.get("mia-key") == "mia", keys
    # mia's key works at the data plane; otto's and the unowned key are untouched.
    assert {"app", "otto-key"} <= set(keys)


@SQLITE
def test_oidc_sign_in_against_a_real_provider(stack: Gateway, web: AdminWeb,
                                              tmp_path: Path) -> None:
    idp = OidcServer(stack.log_dir, preferred_username="dana", email="dana@example.com")
    try:
        settings = {
            "enabled": True,
            "issuer": idp.issuer,
            "client_id": "aigw-admin",
            "client_secret": "oidc-client-secret-1",
            "default_role": "viewer",
            "redirect_url": f"{web.url}/api/auth/oidc/callback",
            "display_name": "Sign in with Mock IdP",
            "scopes": ["email", "profile"],
        }
        saved = web.call("PUT", "/settings/oidc", json=settings)
        assert saved["client_secret"] == "" and saved["client_secret_set"] is True
        run_browser_test("oidc", base_env(stack, web), tmp_path / "artifacts")
        users = {u["username"]: u for u in web.call("GET", "/users")["users"]}
        assert users["dana"]["role"] == "viewer", users
        # Signing in twice made one user.
        assert [u for u in users if u.startswith("dana")] == ["dana"]
    finally:
        idp.stop()


def test_initial_javascript_stays_under_300_kb_gzipped() -> None:
    """Measured on the build admin-web embeds (run-tests.sh builds it)."""
    assert (UI_DIR / "dist" / "index.html").exists(), "admin-web/ui/dist is missing: npm run build"
    p = subprocess.run([node(), "scripts/initial-js-size.mjs", "dist", "--limit-kb=300"],
                       cwd=UI_DIR, capture_output=True, text=True, timeout=60)
    report = json.loads(p.stdout)
    print(f"initial JavaScript: {report['total_gzip_bytes'] / 1024:.1f} KB gzipped "
          f"in {len(report['files'])} file(s)")
    assert p.returncode == 0, p.stderr
    assert 0 < report["total_gzip_bytes"] < 300 * 1024


@SQLITE
def test_served_ui_is_the_build_and_the_api_is_json(web: AdminWeb) -> None:
    index = httpx.get(web.url + "/some/deep/link", timeout=10)
    assert index.status_code == 200 and '<div id="root">' in index.text
    built = (UI_DIR / "dist" / "index.html").read_text()
    assert index.text == built, "admin-web serves a different build than admin-web/ui/dist"
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
    r = httpx.get(web.url + "/api/providers", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    # An API token works as a bearer, without a cookie or CSRF header.
    assert isinstance(web.call("GET", "/providers")["providers"], list)
