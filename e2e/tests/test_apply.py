"""`control-plane apply -f FILE`: declarative config, idempotent."""

from __future__ import annotations

import re
from types import SimpleNamespace

import grpc
import pytest

from admin_client import Api, create_user
from harness import MODEL, Gateway, gateway_config

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

GENERATED = re.compile(r"^generated key for client_key (\S+): (sk-aigw-\S+)$")


def test_apply_twice_changes_nothing(stack: Gateway) -> None:
    config = gateway_config(stack.mock.url)
    first = stack.apply_ok(config)
    assert sorted(first.lines) == sorted([
        "created provider mock",
        f"created price {MODEL}",
        "created client_key app",
    ]), first.stdout

    second = stack.apply_ok(config)
    assert sorted(second.lines) == sorted([
        "unchanged provider mock",
        f"unchanged price {MODEL}",
        "unchanged client_key app",
    ]), second.stdout


def test_apply_reports_updates(stack: Gateway) -> None:
    config = gateway_config(stack.mock.url)
    stack.apply_ok(config)
    config["pricing"][0]["output"] = 12.0
    config["providers"][0]["keys"][0]["weight"] = 2
    r = stack.apply_ok(config)
    assert sorted(r.lines) == sorted([
        "updated provider mock",
        f"updated price {MODEL}",
        "unchanged client_key app",
    ]), r.stdout


def test_prune_deletes_what_the_file_no_longer_names(stack: Gateway) -> None:
    config = gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}"},
        {"name": "old", "key": "sk-aigw-e2e-old-key-0123456789abcdef"},
    ])
    stack.apply_ok(config)
    config["client_keys"] = config["client_keys"][:1]
    r = stack.apply_ok(config, prune=True)
    assert "deleted client_key old" in r.lines, r.stdout
    assert "unchanged client_key app" in r.lines, r.stdout
    again = stack.apply_ok(config, prune=True)
    assert again.lines and all(line.startswith("unchanged ") for line in again.lines), again.stdout


def test_a_key_the_file_gives_an_owner_is_theirs(stack: Gateway, channel: grpc.Channel,
                                                 pb: SimpleNamespace) -> None:
    """`owner:` names the user a key belongs to (as README says), which
    applying again keeps, and which `--prune` then leaves alone."""
    root = Api(pb, channel, stack.admin_token)
    create_user(root, "ann", "member")
    config = gateway_config(stack.mock.url, client_keys=[
        {"name": "app", "key": "${E2E_APP_KEY}"},
        {"name": "anns", "owner": "ann"},
    ])
    assert "created client_key anns" in stack.apply_ok(config).lines
    keys = {k.name: k for k in root.call(root.admin.ListClientKeys, pb.admin_pb2.ListRequest()).client_keys}
    assert keys["anns"].owner == "ann" and keys["app"].owner == ""
    assert "unchanged client_key anns" in stack.apply_ok(config).lines
    config["client_keys"] = config["client_keys"][:1]
    pruned = stack.apply_ok(config, prune=True)
    assert not any("anns" in line for line in pruned.lines), pruned.stdout
    keys = {k.name for k in root.call(root.admin.ListClientKeys, pb.admin_pb2.ListRequest()).client_keys}
    assert "anns" in keys, keys


def test_generated_key_is_printed_once_and_works(stack: Gateway) -> None:
    config = gateway_config(stack.mock.url, client_keys=[{"name": "gen"}])
    first = stack.apply_ok(config)
    generated = [m for m in map(GENERATED.match, first.lines) if m]
    assert len(generated) == 1, first.stdout
    assert generated[0].group(1) == "gen"
    key = generated[0].group(2)

    second = stack.apply_ok(config)
    assert "unchanged client_key gen" in second.lines, second.stdout
    assert key not in second.stdout and not any(GENERATED.match(x) for x in second.lines)

    stack.start_data_plane()
    stack.wait_key_known(key)
    resp = stack.client(api_key=key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}],
    )
    assert resp.choices[0].message.content == "mock reply: hi"
    [trace] = stack.wait_traces([resp._request_id])
    assert trace["client_key_name"] == "gen"


def test_missing_variable_is_an_error(stack: Gateway) -> None:
    config = gateway_config(stack.mock.url)
    config["providers"][0]["keys"][0]["secret"] = "${AIGW_E2E_SURELY_UNSET}"
    r = stack.apply(config)
    assert r.returncode != 0
    assert "AIGW_E2E_SURELY_UNSET" in r.stderr + r.stdout
    # Nothing was half-applied.
    ok = stack.apply_ok(gateway_config(stack.mock.url))
    assert ok.lines and all(line.startswith("created ") for line in ok.lines), ok.stdout


def test_wrong_admin_token_is_refused(stack: Gateway) -> None:
    r = stack.apply(gateway_config(stack.mock.url), admin_token="not-the-token")
    assert r.returncode != 0
    assert (r.stderr + r.stdout).strip(), "no message"
    assert "created" not in r.stdout


@pytest.mark.parametrize("mistake", ["kind", "route", "price", "negative-zero"])
def test_a_mistake_anywhere_changes_nothing(stack: Gateway, mistake: str) -> None:
    config = gateway_config(stack.mock.url)
    second = dict(config["providers"][0], name="second")
    config["providers"].append(second)
    if mistake == "kind":
        second["kind"] = "openia"
    elif mistake == "route":
        config["routes"] = [{"model": "gpt-4o*", "providers": ["mock", "ghost"]}]
    elif mistake == "price":
        config["pricing"][0]["output"] = -1
    else:
        config["pricing"][0]["input"] = -0.0
    r = stack.apply(config)
    assert r.returncode != 0
    want = {"kind": "openia", "route": "ghost", "price": "output", "negative-zero": "pricing[0].input"}
    assert want[mistake] in r.stderr, r.stderr
    assert r.stdout.strip() == "", r.stdout
    # Nothing from the file was applied, not even what came before the mistake.
    assert stack.db.rows("SELECT name FROM providers") == []
    assert stack.db.rows("SELECT name FROM client_keys") == []
