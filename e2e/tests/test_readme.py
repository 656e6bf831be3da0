"""The README works as written: its quick start is run the way a newcomer
runs it. `deploy/local.sh` is started (debug binaries already built, free
ports, a scratch data directory: the same script, only its documented
settings changed), then every shell and Python block of the README runs
verbatim, in order, from the repository root, in a shell where
`data/env.sh` was sourced, as the README says. The stack is stopped with the
README's own stop command. YAML blocks are configuration references, not
commands; the first block's second command is this very test suite.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from harness import REPO, clean_env, eventually

README = REPO / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
STOP = 'kill "$(cat data/local.pid)"'


def exports(env_sh: Path) -> dict[str, str]:
    out = {}
    for line in env_sh.read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            out[k] = v
    return out


@pytest.mark.timeout(900)
def test_readme_quick_start_runs_verbatim(tmp_path: Path) -> None:
    text = README.read_text()
    blocks = BLOCK.findall(text)
    (lang, first), rest = blocks[0], blocks[1:]
    commands = [line.split("#")[0].strip() for line in first.splitlines()]
    assert (lang, commands) == ("sh", ["./deploy/local.sh", "./e2e/run-tests.sh"]), first
    assert STOP in text, "the README says how to stop the stack"
    runnable = [(lang, body) for lang, body in rest if lang in ("sh", "python")]
    assert {lang for lang, _ in rest} <= {"sh", "python", "yaml"}, "a block no one runs"
    assert len(runnable) >= 6

    # A checkout of our own: every top-level entry linked, its own data/.
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("data", ".git"):
            (root / entry.name).symlink_to(entry)
    log = (tmp_path / "local.log").open("wb")
    env = clean_env({"PROFILE": "debug", "SKIP_BUILD": "1", "AIGW_LISTEN": "127.0.0.1:0",
                     "AIGW_ADMIN_LISTEN": "127.0.0.1:0", "AIGW_GRPC_ADDR": "127.0.0.1:0"})
    local = subprocess.Popen(["./deploy/local.sh"], cwd=root, env=env, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        env_sh = root / "data" / "env.sh"

        def started() -> None:
            assert local.poll() is None, (tmp_path / "local.log").read_text()
            assert env_sh.exists(), "no data/env.sh yet"

        eventually(started, timeout=120, what="deploy/local.sh up")
        shell = clean_env(exports(env_sh))
        outputs = []
        for lang, body in runnable:
            if lang == "sh":
                args = ["bash", "-euo", "pipefail", "-c", body]
            else:
                args = [str(root / "data" / "venv" / "bin" / "python"), "-c", body]
            p = subprocess.run(args, cwd=root, env=shell, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=600)
            assert p.returncode == 0, f"README block failed ({p.returncode}):\n{body}\n{p.stdout}\n{p.stderr}"
            outputs.append(p.stdout)
        # What a newcomer sees: the mock's answers, through every SDK.
        curl, _venv, oa, ag, _stubs, grpc_out = outputs
        assert '"content":"mock reply: Hello there"' in curl, curl
        assert oa.startswith("mock reply: Hello CompletionUsage(") and oa.endswith("mock reply: Hello\n"), oa
        assert ag.count("mock reply: Hello") == 2, ag
        assert grpc_out.startswith("demo openai-compatible ['"), grpc_out
        assert not (REPO / "admin_pb2.py").exists(), "stubs stay out of the repository root"

        # The README's stop command, verbatim.
        subprocess.run(["bash", "-c", STOP], cwd=root, check=True, timeout=30)
        assert local.wait(timeout=60) == 143
        logs = list((root / "data" / "logs").glob("*"))
        assert logs and not any(b"\x1b[" in f.read_bytes() for f in logs), "colour codes in the logs"
        assert not env_sh.exists(), "env.sh goes with the stack"
    finally:
        if local.poll() is None:
            local.send_signal(signal.SIGTERM)
            local.wait(timeout=60)
        log.close()
