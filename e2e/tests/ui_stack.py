"""The admin UI's test stack: admin-web in front of the harness's control
plane, the OpenID Connect server (npm `oauth2-mock-server`), and the runner
of the browser tests (Node's test runner with playwright-core driving
Debian's Chromium, in e2e/ui/tests)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from harness import ALL_PROCS, REPO, START_TIMEOUT, Gateway, Proc, clean_env

UI_TESTS = REPO / "e2e" / "ui"
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = os.environ.get("AIGW_CHROMIUM", "/usr/bin/chromium")
BROWSER_TEST_TIMEOUT = 300


def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed (the UI tests need Node.js 20+)"
    return path


def require_browser_tools() -> None:
    """The browser tests need Chromium and e2e/ui's npm packages; run-tests.sh
    installs both. Missing, the tests fail: a skip would pass for a pass."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    assert (UI_TESTS / "node_modules" / "playwright-core").exists(), (
        "e2e/ui/node_modules is missing: run `npm ci` in e2e/ui"
    )


class AdminWeb:
    """admin-web on a free port, calling the gateway's control plane."""

    def __init__(self, gw: Gateway, **env: str):
        self.proc = Proc(
            "admin-web",
            [],
            clean_env({
                "AIGW_ADMIN_LISTEN": "127.0.0.1:0",
                "AIGW_CONTROL_PLANE": gw.cp_url,
                **env,
            }),
            gw.log_dir,
        )
        self.url = f"http://{self.proc.listening_addr()}"
        # Setup calls use the bootstrap token, as automation would.
        self.api = httpx.Client(
            base_url=self.url + "/api",
            headers={"authorization": f"Bearer {gw.admin_token}"},
            timeout=30,
        )

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.api.request(method, path, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    def create_user(self, username: str, role: str) -> str:
        password = f"{username}-password-1"
        self.call("POST", "/users", json={"username": username, "password": password, "role": role})
        return password

    def session(self, username: str, password: str) -> httpx.Client:
        """A browser-like client signed in with the cookie."""
        c = httpx.Client(base_url=self.url, timeout=30, headers={"x-aigw-csrf": "1"})
        r = c.post("/api/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        assert "aigw_session" in c.cookies
        return c

    def stop(self) -> None:
        self.api.close()
        self.proc.stop()


class OidcServer:
    """oauth2-mock-server, a real OpenID Connect provider no one here wrote,
    started by e2e/ui/oidc-server.mjs."""

    LINE = re.compile(r"^oidc listening on (\S+)\s*$")

    def __init__(self, log_dir: Path, **claims: str):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "oidc-server.log"
        env = {**os.environ, **{f"OIDC_CLAIM_{k.upper()}": v for k, v in claims.items()}}
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [node(), str(UI_TESTS / "oidc-server.mjs")],
                cwd=UI_TESTS, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )
        self.issuer = self._wait_line()

    def _wait_line(self) -> str:
        found: list[str] = []

        def read() -> None:
            assert self.popen.stdout is not None
            for raw in self.popen.stdout:
                m = self.LINE.match(raw.decode())
                if m:
                    found.append(m.group(1))
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(START_TIMEOUT)
        assert found, f"oauth2-mock-server did not start: {self.log_path.read_text()}"
        return found[0]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()


def start_browser_test(name: str, env: dict[str, str], artifacts: Path) -> subprocess.Popen[str]:
    """Starts e2e/ui/tests/NAME.test.mjs with Node's test runner, for a test
    that acts on the stack while the browser runs; `finish_browser_test`
    waits for it."""
    require_browser_tools()
    artifacts.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "CHROMIUM": CHROMIUM,
        "SCREENSHOT_DIR": str(SCREENSHOTS),
        "ARTIFACT_DIR": str(artifacts),
        **env,
    }
    return subprocess.Popen(
        [node(), "--test", "--test-reporter=spec", f"tests/{name}.test.mjs"],
        cwd=UI_TESTS, env=full_env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish_browser_test(p: subprocess.Popen[str], name: str, artifacts: Path,
                        started: float) -> str:
    """Waits for a browser test; fails with its output (and the processes'
    logs, via conftest) when it fails."""
    try:
        out, _ = p.communicate(timeout=max(1.0, BROWSER_TEST_TIMEOUT - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    assert p.returncode == 0, (
        f"browser test {name} failed after {time.monotonic() - started:.0f}s "
        f"(artifacts in {artifacts}):\n{out[-12000:]}"
    )
    return out


def run_browser_test(name: str, env: dict[str, str], artifacts: Path) -> str:
    """Runs e2e/ui/tests/NAME.test.mjs to its end (see `finish_browser_test`)."""
    started = time.monotonic()
    return finish_browser_test(start_browser_test(name, env, artifacts), name, artifacts, started)


__all__ = ["AdminWeb", "OidcServer", "run_browser_test", "start_browser_test",
           "finish_browser_test", "ALL_PROCS", "SCREENSHOTS"]
