"""schemathesis against admin-web's /api/openapi.json, signed in as an
admin with the session cookie (and the CSRF header the UI sends): no answer
is a 5xx, and every answer matches the document (status codes, content
types, bodies). The live stream (endless by design) and the stateful
phase (which would disable the run's own user) are left out; calls that end
the session run last, on their own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from harness import Gateway, gateway_config
from ui_stack import AdminWeb



@pytest.fixture
def web(stack: Gateway) -> Iterator[AdminWeb]:
    stack.apply_ok(gateway_config(stack.mock.url))
    stack.start_data_plane()
    stack.wait_key_known()
    w = AdminWeb(stack)
    yield w
    w.stop()


# Calls that end or weaken the run's own session (sign-out, disabling or
# demoting its user, a password change): a second run tests them, after the
# first one has covered everything else.
SELF_HARM = ["/api/auth/logout", "/api/users/{username}", "/api/users/{username}/password"]


def schemathesis(web: AdminWeb, session: str, report: Path, budget: int,
                 paths: list[str], include: bool) -> str:
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{web.url}/api/openapi.json",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--header", f"Cookie: aigw_session={session}",
        "--header", "x-aigw-csrf: 1",
        # Endless by design.
        "--exclude-path", "/api/overview/live",
        # The stateful phase chains calls with names from earlier answers,
        # so it would disable the run's own user on purpose.
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "20",
        "--max-time", str(budget),
        "--request-timeout", "20",
        "--seed", "7",
        "--workers", "2",
        "--report", "junit,har", "--report-dir", str(report),
    ]
    for path in paths:
        cmd += ["--include-path" if include else "--exclude-path", path]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 120,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    print(out[-3000:])
    assert p.returncode == 0, f"schemathesis found problems:\n{out[-15000:]}"
    return out


def still_signed_in(web: AdminWeb, session: str) -> None:
    """The run's session still works, so its calls were made signed in.
    (schemathesis's own "Authentication failed" warning is no measure of
    that: it also fires for an operation whose fuzzed input is never valid,
    such as a budget for a user that does not exist, or that its fuzzed
    Authorization headers made answer 401.)"""
    with httpx.Client(base_url=web.url, timeout=30) as c:
        r = c.get("/api/auth/me", cookies={"aigw_session": session})
    assert r.status_code == 200, f"the session stopped working during the run: {r.text}"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_api_conforms_to_its_openapi_document(stack: Gateway, web: AdminWeb, tmp_path: Path) -> None:
    # Some traffic, so the read endpoints have something to describe.
    for _ in range(3):
        stack.client().chat.completions.create(model="gpt-4o-mini",
                                               messages=[{"role": "user", "content": "hi"}])
    password = web.create_user("schema-admin", "admin")
    session = web.session("schema-admin", password).cookies["aigw_session"]
    out = schemathesis(web, session, tmp_path / "main", 150, SELF_HARM, include=False)
    still_signed_in(web, session)
    # It really exercised the API: every operation but the excluded ones.
    tested = re.search(r"Tested: (\d+)", out)
    assert tested and int(tested.group(1)) >= 30, out[-2000:]
    # The same session (it still works, checked above): signing in again
    # could meet the failed-login throttle, which the first run's fuzzed
    # sign-ins from this address may have set off (as they should).
    schemathesis(web, session, tmp_path / "self", 45, SELF_HARM, include=True)
