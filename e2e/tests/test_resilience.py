"""Faults of our own processes: the control plane down, a data plane
restarted or killed. Calls keep being served from the data plane's disk
snapshot, and every answered call's trace arrives, exactly once."""

from __future__ import annotations

import signal

import httpx
import pytest

from harness import MODEL, POOL_SECRET, Expected, Gateway, assert_trace_matches

MESSAGES = [
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Are you still there?"},
]
EXPECTED = Expected.for_messages(MESSAGES)


def call(gw: Gateway, stream: bool = False) -> str:
    """One call through the data plane; checks the answer, returns its id."""
    client = gw.client()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        request_id = raw.headers.get("x-request-id")
    else:
        resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        text = resp.choices[0].message.content
        request_id = resp._request_id
    assert text == EXPECTED.reply
    assert request_id
    return request_id


def assert_all_traced_once(gw: Gateway, calls: list[tuple[str, bool]]) -> None:
    ids = [rid for rid, _ in calls]
    assert len(set(ids)) == len(ids), f"duplicate request ids {ids}"
    traces = gw.wait_traces(ids)
    for trace, (_, stream) in zip(traces, calls):
        assert_trace_matches(trace, EXPECTED, stream=stream)
    assert gw.db.trace_count() == len(calls)


def test_restarted_data_plane_serves_from_disk_while_control_plane_is_down(gw: Gateway) -> None:
    calls = [(call(gw), False)]
    assert_all_traced_once(gw, calls)

    gw.stop_control_plane()
    gw.dp.stop()  # type: ignore[union-attr]
    gw.start_data_plane()  # waits for /readyz: the disk snapshot was loaded
    gw.mock.clear()

    calls.append((call(gw), False))
    calls.append((call(gw, stream=True), True))
    recs = gw.mock.chat_requests()
    assert len(recs) == 2, recs
    for rec in recs:
        assert rec["headers"]["authorization"] == f"Bearer {POOL_SECRET}"

    gw.start_control_plane()
    assert_all_traced_once(gw, calls)
    # And the pipeline still flows afterwards.
    calls.append((call(gw), False))
    assert_all_traced_once(gw, calls)


def test_calls_during_a_control_plane_outage_are_traced_once(gw: Gateway) -> None:
    calls = [(call(gw), False)]
    assert_all_traced_once(gw, calls)

    gw.stop_control_plane()
    for stream in (False, True, False, True):
        calls.append((call(gw, stream), stream))
    gw.start_control_plane()
    assert_all_traced_once(gw, calls)

    calls.append((call(gw), False))
    assert_all_traced_once(gw, calls)


def test_killed_data_plane_delivers_its_spooled_traces(gw: Gateway) -> None:
    # With the control plane down, the traces can only be in the spool when
    # the data plane is killed.
    gw.stop_control_plane()
    calls = [(call(gw, stream), stream) for stream in (False, True, False)]
    gw.dp.stop(signal.SIGKILL)  # type: ignore[union-attr]

    gw.start_control_plane()
    gw.start_data_plane()
    assert_all_traced_once(gw, calls)
    calls.append((call(gw), False))
    assert_all_traced_once(gw, calls)


def test_data_plane_killed_right_after_answering(gw: Gateway) -> None:
    # Control plane up: some traces may be delivered (or delivered without
    # the ack arriving) before the kill; after the restart, none is missing
    # and none is stored twice.
    calls = [(call(gw, stream), stream) for stream in (False, True, False, True)]
    gw.dp.stop(signal.SIGKILL)  # type: ignore[union-attr]
    gw.start_data_plane()
    assert_all_traced_once(gw, calls)
    calls.append((call(gw), False))
    assert_all_traced_once(gw, calls)


def test_a_stream_cut_by_killing_its_data_plane_is_traced_at_its_next_start(gw: Gateway) -> None:
    # The app got part of an answer, and the provider bills what it made:
    # the stream's trace is filed at the data plane's next start, charged
    # for the prompt and what had streamed.
    gw.mock.add_fault(chunk_delay_ms=300, times=1)
    seen = 0
    with httpx.stream("POST", gw.dp_url + "/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {gw.app_key}"},
                      json={"model": MODEL, "messages": MESSAGES, "stream": True}) as r:
        assert r.status_code == 200
        request_id = r.headers["x-request-id"]
        # Held until the kill: a dropped line iterator would close the
        # stream, and the data plane would trace an app that left.
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: {") and '"content"' in line:
                seen += 1
            if seen == 2:
                break
        gw.dp.stop(signal.SIGKILL)  # type: ignore[union-attr]
        del lines
    gw.start_data_plane()
    [trace] = gw.wait_traces([request_id])
    assert trace["status"] == 200
    assert trace["error"] == "data plane stopped before the stream ended"
    assert trace["stream"]
    assert trace["input_tokens"] > 0
    assert trace["output_tokens"] >= seen
    assert trace["cost"] > 0
    # Filed once, and the data plane serves and traces on.
    after = call(gw, stream=True)
    gw.wait_traces([after])
    assert gw.db.trace_count(request_id) == 1
    assert gw.db.trace_count() == 2


@pytest.mark.parametrize("backend", ["sqlite"])
def test_data_plane_without_snapshot_is_not_ready(stack: Gateway) -> None:
    # Never connected, control plane unreachable, nothing on disk: the data
    # plane must say it cannot serve, not serve an empty config.
    stack.stop_control_plane()
    stack.start_data_plane(wait_ready=False)
    r = httpx.get(stack.dp_url + "/readyz", timeout=5)
    assert r.status_code == 503
    assert httpx.get(stack.dp_url + "/healthz", timeout=5).status_code == 200
