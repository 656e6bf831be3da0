"""What operators see: OpenTelemetry spans received by a real OTLP receiver
(GenAI semantic conventions, one span per request and one per upstream
attempt, parentage, sampling), W3C `traceparent` as the upstream saw it,
and `/metrics` of every process, checked by Prometheus's own `promtool`
and against the Grafana dashboard that uses them."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from harness import (
    MODEL,
    POOL_SECRET,
    REPO,
    Expected,
    Gateway,
    Proc,
    clean_env,
    eventually,
    gateway_config,
)
from otlp_receiver import OtlpHttpReceiver, OtlpReceiver
from prom import check_with_promtool, promtool
from third_party import Nginx, Pki

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Trace me please"},
]
EXPECTED = Expected.for_messages(MESSAGES)
DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")
SECOND_SECRET = "sk-pool-secret-456"
# Spans do not depend on the control plane's database.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    yield r
    r.stop()


def two_key_config(mock_url: str) -> dict[str, Any]:
    """The tests' config with a second pool credential (for retries)."""
    cfg = gateway_config(mock_url)
    cfg["providers"][0]["keys"].append({"name": "pool-b", "secret": SECOND_SECRET, "weight": 1})
    return cfg


@pytest.fixture
def traced(stack: Gateway, receiver: OtlpReceiver) -> Gateway:
    """The spine with its data plane exporting spans to `receiver`."""
    stack.apply_ok(two_key_config(stack.mock.url))
    stack.start_data_plane(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="aigw-e2e",
    )
    stack.wait_key_known()
    stack.mock.clear()
    return stack


def chat(gw: Gateway, *, stream: bool = False, headers: dict[str, str] | None = None) -> str:
    """One chat call; checks the answer and returns its request id."""
    client = gw.client()
    if stream:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers=headers or {})
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, extra_headers=headers or {})
        text = raw.parse().choices[0].message.content
    assert text == EXPECTED.reply
    rid = raw.headers.get("x-request-id")
    assert rid
    return rid


def upstream_traceparents(gw: Gateway) -> list[tuple[str, str, str]]:
    """(trace id, parent span id, flags) of every chat request the mock got, in order."""
    out = []
    for r in gw.mock.chat_requests():
        tp = r["headers"].get("traceparent", "")
        m = TRACEPARENT.match(tp)
        assert m, f"the upstream got traceparent {tp!r}"
        out.append(m.groups())
    return out


def spans_of(receiver: OtlpReceiver, trace_id: str, n: int) -> list[dict[str, Any]]:
    def arrived() -> list[dict[str, Any]]:
        spans = receiver.trace(trace_id)
        assert len(spans) >= n, f"{len(spans)} spans of {trace_id} so far"
        return spans

    spans = eventually(arrived, what=f"{n} spans exported for trace {trace_id}")
    assert len(spans) == n, json.dumps(spans, indent=1)
    return spans


def request_and_attempts(spans: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    [req] = [s for s in spans if s["kind"] == "SERVER"]
    attempts = sorted((s for s in spans if s["kind"] == "CLIENT"), key=lambda s: s["start_ns"])
    assert len(attempts) == len(spans) - 1, spans
    for a in attempts:
        assert a["parent_span_id"] == req["span_id"], (a, req)
        assert req["start_ns"] <= a["start_ns"] <= a["end_ns"] <= req["end_ns"], (a, req)
    return req, attempts


def assert_genai(span: dict[str, Any], *, request_model: str = MODEL) -> None:
    a = span["attributes"]
    assert span["name"] == f"chat {request_model}", span["name"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.system"] == "openai"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == request_model
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.usage.input_tokens"] == EXPECTED.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == EXPECTED.completion_tokens


@SQLITE_ONLY
def test_spans_continue_the_apps_trace_with_genai_attributes(traced: Gateway, receiver: OtlpReceiver) -> None:
    trace_id, app_span = secrets.token_hex(16), secrets.token_hex(8)
    rid = chat(traced, headers={"traceparent": f"00-{trace_id}-{app_span}-01",
                                "tracestate": "app=blue"})

    req, [attempt] = request_and_attempts(spans_of(receiver, trace_id, 2))
    # The request span is the app's span's child; the attempt is the request's.
    assert req["parent_span_id"] == app_span
    assert_genai(req)
    assert req["attributes"]["aigw.request_id"] == rid
    assert req["attributes"]["aigw.client_key"] == "app"
    assert req["attributes"]["http.response.status_code"] == 200
    assert abs(req["attributes"]["aigw.cost_usd"] - EXPECTED.cost) < 1e-12
    assert req["status"] != "ERROR"
    assert req["resource"]["service.name"] == "aigw-e2e"
    assert req["resource"]["service.instance.id"] == "e2e-dp-1"
    assert_genai(attempt)
    assert attempt["attributes"]["aigw.provider_key"] in ("pool-a", "pool-b")
    assert attempt["attributes"]["server.address"] == "127.0.0.1"
    assert attempt["attributes"]["http.response.status_code"] == 200
    # The upstream was called with the attempt span as its parent, sampled,
    # and the app's tracestate.
    [(up_trace, up_parent, flags)] = upstream_traceparents(traced)
    assert (up_trace, up_parent, flags) == (trace_id, attempt["span_id"], "01")
    [rec] = traced.mock.chat_requests()
    assert rec["headers"].get("tracestate") == "app=blue"
    # Nothing from the app's own headers stands in for the gateway's.
    assert rec["headers"]["authorization"] == f"Bearer {POOL_SECRET}" or \
        rec["headers"]["authorization"] == f"Bearer {SECOND_SECRET}"


@SQLITE_ONLY
def test_spans_reach_an_https_otlp_http_collector_behind_nginx(stack: Gateway, tmp_path: Path) -> None:
    """OTLP/HTTP to an https endpoint, as hosted collectors are: nginx
    terminates TLS with a certificate from a private CA (given to the data
    plane as OTEL_EXPORTER_OTLP_CERTIFICATE) in front of an OTLP/HTTP
    receiver."""
    pki = Pki.create(tmp_path / "pki")
    receiver = OtlpHttpReceiver()
    nginx = Nginx(tmp_path / "nginx", receiver.port, pki)
    try:
        stack.apply_ok(gateway_config(stack.mock.url))
        stack.start_data_plane(
            OTEL_EXPORTER_OTLP_ENDPOINT=nginx.tls_url,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_CERTIFICATE=str(pki.ca),
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_SERVICE_NAME="aigw-e2e",
        )
        stack.wait_key_known()
        trace_id, app_span = secrets.token_hex(16), secrets.token_hex(8)
        chat(stack, headers={"traceparent": f"00-{trace_id}-{app_span}-01"})
        req, [attempt] = request_and_attempts(spans_of(receiver, trace_id, 2))
        assert req["parent_span_id"] == app_span
        assert_genai(req)
        assert_genai(attempt)
        assert req["resource"]["service.name"] == "aigw-e2e"
        assert '"POST /v1/traces HTTP/1.1" 200' in nginx.access_log()
    finally:
        nginx.stop()
        receiver.stop()


@SQLITE_ONLY
def test_a_stream_without_traceparent_starts_a_trace(traced: Gateway, receiver: OtlpReceiver) -> None:
    rid = chat(traced, stream=True)
    [(trace_id, up_parent, flags)] = upstream_traceparents(traced)
    assert flags == "01"
    req, [attempt] = request_and_attempts(spans_of(receiver, trace_id, 2))
    assert req["parent_span_id"] == ""  # a root: the app sent no context
    assert attempt["span_id"] == up_parent
    assert_genai(req)
    assert req["attributes"]["aigw.stream"] is True
    assert req["attributes"]["aigw.request_id"] == rid


@SQLITE_ONLY
def test_each_attempt_is_a_span_and_failures_are_marked(traced: Gateway, receiver: OtlpReceiver) -> None:
    traced.mock.add_fault(status=500, times=1)
    trace_id = secrets.token_hex(16)
    chat(traced, headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    req, attempts = request_and_attempts(spans_of(receiver, trace_id, 3))
    failed, ok = attempts
    assert failed["status"] == "ERROR"
    assert failed["attributes"]["http.response.status_code"] == 500
    assert failed["attributes"]["error.type"]
    assert ok["status"] != "ERROR"
    assert failed["attributes"]["aigw.provider_key"] != ok["attributes"]["aigw.provider_key"]
    assert req["attributes"]["aigw.attempts"] == 2
    assert req["status"] != "ERROR"
    # Each attempt told the upstream its own span.
    assert [p for _, p, _ in upstream_traceparents(traced)] == [failed["span_id"], ok["span_id"]]


@SQLITE_ONLY
def test_sampling_follows_the_parent_and_the_setting(traced: Gateway, receiver: OtlpReceiver) -> None:
    # The app's trace is not sampled: nothing is exported, but the upstream
    # still gets the trace (unsampled) so its own spans can join it.
    unsampled = secrets.token_hex(16)
    chat(traced, headers={"traceparent": f"00-{unsampled}-{secrets.token_hex(8)}-00"})
    [(up_trace, _, flags)] = upstream_traceparents(traced)
    assert (up_trace, flags) == (unsampled, "00")

    # A data plane told never to sample exports nothing and still propagates.
    proc, url = traced.extra_data_plane(
        "e2e-dp-off", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_TRACES_SAMPLER="always_off", OTEL_BSP_SCHEDULE_DELAY="100")
    try:
        eventually(lambda: httpx.get(url + "/readyz", timeout=5).raise_for_status())
        traced.mock.clear()
        r = httpx.post(url + "/v1/chat/completions", timeout=30,
                       headers={"authorization": f"Bearer {traced.app_key}"},
                       json={"model": MODEL, "messages": MESSAGES})
        assert r.status_code == 200, r.text
        [(off_trace, _, off_flags)] = upstream_traceparents(traced)
        assert off_flags == "00"
        # A sampled request after both proves the exporter is flowing, so
        # the absence of the others is not a delay.
        sampled = secrets.token_hex(16)
        chat(traced, headers={"traceparent": f"00-{sampled}-{secrets.token_hex(8)}-01"})
        spans_of(receiver, sampled, 2)
        assert receiver.trace(unsampled) == []
        assert receiver.trace(off_trace) == []
    finally:
        proc.stop()


# ---------------------------------------------------------------- Prometheus


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def families(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    return names


def dashboard_exprs() -> list[str]:
    """The dashboard's PromQL queries."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert exprs, f"{DASHBOARD} has no queries"
    return exprs


def dashboard_metrics() -> set[str]:
    """Every aigw_* metric name the dashboard's queries use."""
    return {m for e in dashboard_exprs() for m in re.findall(r"\baigw_[a-z0-9_]+", e)}


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (as recording rules, Grafana's variables
    given values)."""
    tool = promtool()
    rules = [{"record": f"aigw:dashboard_query_{i}:check",
              "expr": e.replace("$__rate_interval", "5m").replace("$dp_job", "aigw-data-plane")
              .replace("$cp_job", "aigw-control-plane").replace("$admin_job", "aigw-admin-web")}
             for i, e in enumerate(dashboard_exprs())]
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    p = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(rules)} rules found" in p.stdout, p.stdout


def test_every_process_serves_metrics_promtool_accepts(stack: Gateway, tmp_path: Path) -> None:
    tool = promtool()
    # The control plane with its metrics port.
    stack.stop_control_plane()
    stack.cp_env["AIGW_METRICS_LISTEN"] = "127.0.0.1:0"
    stack.start_control_plane()
    assert stack.cp is not None
    cp_metrics = "http://" + stack.cp.wait_line(re.compile(r"^control-plane metrics on (\S+)$")).group(1)
    stack.apply_ok(two_key_config(stack.mock.url))
    stack.start_data_plane()
    stack.wait_key_known()
    admin = Proc("admin-web", [], clean_env({
        "AIGW_ADMIN_LISTEN": "127.0.0.1:0", "AIGW_CONTROL_PLANE": stack.cp_url}), stack.log_dir)
    try:
        admin_url = f"http://{admin.listening_addr()}"
        assert httpx.get(admin_url + "/healthz", timeout=5).status_code == 200

        # Traffic of every kind the metrics count.
        ids = [chat(stack), chat(stack, stream=True)]
        stack.mock.add_fault(status=429, retry_after=30, times=1)
        ids.append(chat(stack))  # retried on the other credential; one cools down
        bad = httpx.post(stack.dp_url + "/v1/chat/completions", timeout=10,
                         headers={"authorization": "Bearer sk-wrong"},
                         json={"model": MODEL, "messages": MESSAGES})
        assert bad.status_code == 401
        stack.wait_traces(ids)

        dp_text = httpx.get(stack.dp_url + "/metrics", timeout=5).text
        cp_text = eventually(lambda: _stored(httpx.get(cp_metrics + "/metrics", timeout=5).text, 3))
        admin_text = httpx.get(admin_url + "/metrics", timeout=5).text
        for name, text in (("data-plane", dp_text), ("control-plane", cp_text), ("admin-web", admin_text)):
            check_with_promtool(tool, name, text)

        dp = samples(dp_text)
        per_call = EXPECTED.prompt_tokens
        assert dp['aigw_tokens_total{provider="mock",type="input"}'] == 3 * per_call
        assert dp['aigw_tokens_total{provider="mock",type="output"}'] == 3 * EXPECTED.completion_tokens
        assert abs(dp['aigw_cost_usd_total{provider="mock"}'] - 3 * EXPECTED.cost) < 1e-9
        assert dp['aigw_request_errors_total{kind="invalid_key"}'] == 1
        assert dp['aigw_upstream_attempts_total{provider="mock",outcome="rate_limited"}'] == 1
        assert dp['aigw_upstream_attempts_total{provider="mock",outcome="ok"}'] == 3
        assert dp['aigw_upstream_cooldowns_total{provider="mock",reason="rate_limited"}'] == 1
        assert dp['aigw_upstream_credentials_cooling{provider="mock"}'] == 1
        assert dp['aigw_upstream_credentials{provider="mock"}'] == 2
        assert dp['aigw_requests_total{endpoint="chat.completions",status="2xx"}'] == 3
        assert dp['aigw_requests_total{endpoint="chat.completions",status="4xx"}'] == 1
        assert dp['aigw_request_duration_seconds_count{endpoint="chat.completions"}'] == 3
        assert dp['aigw_time_to_first_byte_seconds_count{endpoint="chat.completions"}'] == 3
        assert dp['aigw_response_headers_seconds_count{endpoint="chat.completions"}'] == 4
        assert dp["aigw_ratelimit_store_degraded"] == 0
        assert dp["aigw_control_plane_connected"] == 1
        version = httpx.get(stack.dp_url + "/readyz", timeout=5).text.split()[1]
        assert dp[f'aigw_snapshot_info{{version="{version}"}}'] == 1
        assert 0 <= dp["aigw_snapshot_age_seconds"] < 300
        assert dp["aigw_trace_spool_segments"] == 0
        assert dp["aigw_trace_spool_oldest_age_seconds"] == 0

        cp = samples(cp_text)
        assert cp["aigw_trace_ingest_stored_total"] == 3
        assert cp[f'aigw_snapshot_info{{version="{version}"}}'] == 1
        assert 0 <= cp["aigw_snapshot_age_seconds"] < 300
        assert cp['aigw_nodes_connected{region="e2e"}'] == 1
        assert cp['aigw_nodes_current{region="e2e"}'] == 1
        assert cp["aigw_trace_ingest_lag_seconds_count"] >= 1

        adm = samples(admin_text)
        assert adm['aigw_admin_http_requests_total{route="/healthz",status="2xx"}'] == 1

        # The dashboard uses only metrics the processes serve.
        served = families(dp_text) | families(cp_text) | families(admin_text)
        served |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in served}
        missing = dashboard_metrics() - served
        assert not missing, f"{DASHBOARD.name} queries metrics no process serves: {sorted(missing)}"
    finally:
        admin.stop()


def _stored(text: str, n: int) -> str:
    assert samples(text).get("aigw_trace_ingest_stored_total") == n, "traces not all counted yet"
    return text
