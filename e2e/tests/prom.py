"""Prometheus's own `promtool`, for the tests that check `/metrics`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("AIGW_TEST_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not installed but AIGW_TEST_REQUIRE_PROMTOOL=1")
        pytest.skip("promtool not installed (e2e/run-tests.sh installs Debian's prometheus)")
    return path


def check_with_promtool(tool: str, name: str, text: str) -> None:
    p = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), (
        f"promtool check metrics on {name}: exit {p.returncode}\n{p.stdout}{p.stderr}\n---\n{text}"
    )
