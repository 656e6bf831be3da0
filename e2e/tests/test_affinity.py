"""Cache-aware pools: with prompt-cache affinity, requests that share a
prompt cache (here OpenAI's `prompt_cache_key`) always reach the same
credential of the pool, while different caches spread over it; with
affinity off, the pool's own strategy (round-robin) holds."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import httpx
import pytest

from harness import MODEL, Gateway

SECRETS = [f"sk-affinity-pool-{i:04d}" for i in range(4)]


@pytest.fixture
def backend() -> str:
    return "sqlite"


def config(mock_url: str, affinity: str) -> dict[str, Any]:
    return {
        "providers": [{
            "name": "pool", "kind": "openai-compatible", "base_url": mock_url, "models": ["gpt-4o*"],
            "strategy": "round-robin", "affinity": affinity, "health_check": {"interval_secs": 0},
            "keys": [{"name": f"k{i}", "secret": s} for i, s in enumerate(SECRETS)],
        }],
        "client_keys": [{"name": "app", "key": "${E2E_APP_KEY}"}],
    }


def run(gw: Gateway, n: int, caches: int) -> dict[str, Counter[str]]:
    """n requests cycling over `caches` cache keys; which credential each
    cache key reached, per cache key."""
    gw.mock.clear()
    with httpx.Client(base_url=gw.dp_url, timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"}) as c:
        for i in range(n):
            r = c.post("/v1/chat/completions", json={
                "model": MODEL, "prompt_cache_key": f"tenant-{i % caches}",
                "messages": [{"role": "user", "content": f"question {i}"}]})
            assert r.status_code == 200, r.text
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in gw.mock.chat_requests():
        seen[rec["body"]["prompt_cache_key"]][rec["headers"]["authorization"].removeprefix("Bearer ")] += 1
    return seen


def test_a_cache_key_sticks_to_one_credential(stack: Gateway) -> None:
    stack.apply_ok(config(stack.mock.url, "prompt-cache"))
    stack.start_data_plane()
    stack.wait_key_known()
    seen = run(stack, 1000, 50)
    assert len(seen) == 50
    assert all(len(keys) == 1 for keys in seen.values()), {k: v for k, v in seen.items() if len(v) > 1}
    per_credential = Counter(next(iter(keys)) for keys in seen.values())
    assert set(per_credential) == set(SECRETS), per_credential  # spread over the pool
    assert max(per_credential.values()) <= 25, per_credential


def test_without_affinity_the_strategy_holds(stack: Gateway) -> None:
    stack.apply_ok(config(stack.mock.url, ""))
    stack.start_data_plane()
    stack.wait_key_known()
    seen = run(stack, 400, 50)
    totals = Counter()
    for keys in seen.values():
        totals.update(keys)
    # Round-robin: each credential takes a quarter.
    assert sorted(totals.values()) == [100, 100, 100, 100], totals
    assert any(len(keys) > 1 for keys in seen.values())
