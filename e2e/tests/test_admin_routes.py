"""Routes with fallbacks and provider model maps, declared in the apply file
(a client of the Admin API) and served by the data plane."""

from __future__ import annotations

import json

import pytest

from harness import MODEL, Gateway, free_port, gateway_config

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def routed_config(stack: Gateway) -> dict:
    config = gateway_config(stack.mock.url)
    mock = config["providers"][0]
    mock["models"] = ["gpt-4o*", "fast-mini"]
    mock["model_map"] = {"fast-mini": MODEL}
    # Nothing listens there: every call to it fails to connect.
    down = {
        "name": "down",
        "kind": "openai-compatible",
        "base_url": f"http://127.0.0.1:{free_port()}",
        "models": ["gpt-4o*"],
        "keys": [{"name": "d", "secret": "sk-down-0123456789abcdef"}],
    }
    config["providers"].insert(0, down)
    config["routes"] = [{"model": "gpt-4o*", "providers": ["down", "mock"]}]
    return config


def test_route_falls_back_and_model_map_renames(stack: Gateway) -> None:
    config = routed_config(stack)
    first = stack.apply_ok(config)
    assert "created route gpt-4o*" in first.lines, first.stdout
    again = stack.apply_ok(config)
    assert again.lines and all(line.startswith("unchanged ") for line in again.lines), again.stdout

    stack.start_data_plane()
    stack.wait_key_known()
    app = stack.client()
    messages = [{"role": "user", "content": "route me"}]

    # The route tries `down` first, then falls back to `mock`.
    resp = app.chat.completions.create(model=MODEL, messages=messages)
    assert resp.choices[0].message.content == "mock reply: route me"
    [trace] = stack.wait_traces([resp._request_id])
    assert trace["provider"] == "mock" and trace["status"] == 200
    [row] = stack.db.rows("SELECT attempts FROM traces WHERE request_id = ?", (resp._request_id,))
    tried = [a["provider"] for a in json.loads(row["attempts"])]
    assert tried[0] == "down" and tried[-1] == "mock", tried

    # The model map renames the app's model for the upstream.
    stack.mock.clear()
    resp = app.chat.completions.create(model="fast-mini", messages=messages)
    assert resp.choices[0].message.content == "mock reply: route me"
    [sent] = stack.mock.chat_requests()
    assert sent["body"]["model"] == MODEL

    # A provider a route names cannot go; pruning removes the route first.
    config["providers"] = config["providers"][1:]
    config["routes"] = []
    pruned = stack.apply_ok(config, prune=True)
    lines = pruned.lines
    assert lines.index("deleted route gpt-4o*") < lines.index("deleted provider down"), pruned.stdout
