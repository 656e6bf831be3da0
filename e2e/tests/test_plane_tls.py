"""Between the planes: gRPC over TLS and mTLS with certificates from a test
CA (openssl), for data planes, `apply` and a grpcio automation client alike;
plaintext and certificate-less clients are refused. Per-node credentials:
a data plane with its own credential is recorded under its bound identity;
revoking it cuts it off within a second while the other nodes go on."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import httpx
import pytest

from admin_client import Api
from harness import MODEL, Gateway, eventually, gateway_config
from third_party import Pki


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def tls_stack(stack: Gateway, pki: Pki, *, mtls: bool) -> dict[str, str]:
    """Restarts the control plane on TLS (mTLS when asked); returns the
    client settings a data plane or `apply` needs."""
    cert, key = pki.leaf("control-plane", dns=["localhost"])
    stack.stop_control_plane()
    stack.cp_env.update({"AIGW_TLS_CERT": str(cert), "AIGW_TLS_KEY": str(key)})
    if mtls:
        stack.cp_env["AIGW_TLS_CLIENT_CA"] = str(pki.ca)
    stack.start_control_plane()
    client = {"AIGW_CA_FILE": str(pki.ca)}
    if mtls:
        ccert, ckey = pki.leaf("data-plane", dns=["dp"], client=True)
        client |= {"AIGW_TLS_CLIENT_CERT": str(ccert), "AIGW_TLS_CLIENT_KEY": str(ckey)}
    return client


def secure_channel(stack: Gateway, pki: Pki, client: dict[str, str]) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=Path(client["AIGW_TLS_CLIENT_KEY"]).read_bytes() if "AIGW_TLS_CLIENT_KEY" in client else None,
        certificate_chain=Path(client["AIGW_TLS_CLIENT_CERT"]).read_bytes() if "AIGW_TLS_CLIENT_CERT" in client else None,
    )
    return grpc.secure_channel(stack.cp_url.removeprefix("https://"), creds)


def refused(channel: grpc.Channel, pb: SimpleNamespace, token: str) -> None:
    api = Api(pb, channel, token)
    e = api.refused(api.admin.ListProviders, pb.admin_pb2.ListRequest())
    assert e.code() == grpc.StatusCode.UNAVAILABLE, e


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_the_planes_speak_tls_and_refuse_plaintext(stack: Gateway, pki: Pki, pb: SimpleNamespace,
                                                   mtls: bool) -> None:
    client = tls_stack(stack, pki, mtls=mtls)
    stack.apply_ok(gateway_config(stack.mock.url), env=client)
    stack.dp_env.update(client)
    stack.start_data_plane()
    stack.wait_key_known()
    r = httpx.post(stack.dp_url + "/v1/chat/completions", timeout=30,
                   headers={"authorization": f"Bearer {stack.app_key}"},
                   json={"model": MODEL, "messages": [{"role": "user", "content": "over tls"}]})
    assert r.status_code == 200, r.text
    stack.wait_traces([r.headers["x-request-id"]])  # traces travel the same way
    ch = secure_channel(stack, pki, client)
    try:
        api = Api(pb, ch, stack.admin_token)
        nodes = api.call(api.admin.ListNodes, pb.admin_pb2.ListRequest()).nodes
        assert [n.node_id for n in nodes if n.connected] == ["e2e-dp-1"]
    finally:
        ch.close()

    # Plaintext is refused; so is TLS without a client certificate under mTLS.
    plain = grpc.insecure_channel(f"127.0.0.1:{stack.cp_port}")
    try:
        refused(plain, pb, stack.admin_token)
    finally:
        plain.close()
    if mtls:
        bare = secure_channel(stack, pki, {})
        try:
            refused(bare, pb, stack.admin_token)
        finally:
            bare.close()
        no_cert = {k: v for k, v in client.items() if k == "AIGW_CA_FILE"}
        r = stack.apply(gateway_config(stack.mock.url), env=no_cert)
        assert r.returncode != 0
    # A data plane told to use plaintext never gets a snapshot.
    plain_dp, url = stack.extra_data_plane("e2e-plain", AIGW_CONTROL_PLANE=f"http://127.0.0.1:{stack.cp_port}",
                                           AIGW_CA_FILE="", AIGW_TLS_CLIENT_CERT="", AIGW_TLS_CLIENT_KEY="")
    try:
        # It tried and failed (the control plane speaks only TLS) ...
        eventually(lambda: "snapshot stream unavailable" in plain_dp.log_path.read_text(),
                   what="the plaintext data plane's attempt failed")
        # ... so it has nothing to serve.
        assert httpx.get(url + "/readyz", timeout=5).status_code == 503
    finally:
        plain_dp.stop()


def test_a_revoked_node_credential_is_cut_off_within_a_second(stack: Gateway, pki: Pki,
                                                               pb: SimpleNamespace) -> None:
    client = tls_stack(stack, pki, mtls=False)
    ch = secure_channel(stack, pki, client)
    root = Api(pb, ch, stack.admin_token)
    cred = root.call(root.admin.CreateNodeCredential,
                     pb.admin_pb2.NodeCredentialSpec(node_id="dp-eu-1", region="eu"))
    stack.apply_ok(gateway_config(stack.mock.url), env=client)
    stack.dp_env.update(client)
    # One node with its own credential (claiming another region), one on the join token.
    stack.start_data_plane(AIGW_NODE_TOKEN=cred.token, AIGW_NODE_ID="dp-eu-1", AIGW_REGION="us")
    stack.wait_key_known()
    other, other_url = stack.extra_data_plane("dp-2")
    try:
        def connected() -> dict[str, object]:
            nodes = root.call(root.admin.ListNodes, pb.admin_pb2.ListRequest()).nodes
            up = {n.node_id: n for n in nodes if n.connected}
            assert set(up) == {"dp-eu-1", "dp-2"}, up
            return up

        up = eventually(connected, what="both nodes connected")
        assert up["dp-eu-1"].region == "eu", "the bound region, not the claimed one"
        r = httpx.post(stack.dp_url + "/v1/chat/completions", timeout=30,
                       headers={"authorization": f"Bearer {stack.app_key}"},
                       json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
        [trace] = stack.wait_traces([r.headers["x-request-id"]])
        assert (trace["node_id"], trace["region"]) == ("dp-eu-1", "eu")

        root.call(root.admin.RevokeNodeCredential, pb.admin_pb2.NameRequest(name="dp-eu-1"))
        t0 = time.monotonic()

        def cut_off() -> None:
            nodes = root.call(root.admin.ListNodes, pb.admin_pb2.ListRequest()).nodes
            up = {n.node_id for n in nodes if n.connected}
            assert up == {"dp-2"}, up

        eventually(cut_off, timeout=1.0, what="revoked node disconnected within 1 s")
        assert time.monotonic() - t0 <= 1.0
        # It stays out; the other node keeps receiving changes.
        stack.apply_ok(gateway_config(stack.mock.url, client_keys=[
            {"name": "app", "key": "${E2E_APP_KEY}"}, {"name": "new", "key": "sk-aigw-new-key-000001"}]),
            env=client)

        def other_has_new_key() -> None:
            r = httpx.get(other_url + "/v1/models", timeout=5,
                          headers={"authorization": "Bearer sk-aigw-new-key-000001"})
            assert r.status_code == 200

        eventually(other_has_new_key, what="the other node gets the change")
        r = httpx.get(stack.dp_url + "/v1/models", timeout=5,
                      headers={"authorization": "Bearer sk-aigw-new-key-000001"})
        assert r.status_code == 401, "the revoked node never got it"
        assert "node credential revoked" in stack.dp.log_tail(200)  # type: ignore[union-attr]
    finally:
        other.stop()
        ch.close()


def test_the_certificates_gen_certs_makes_serve_the_compose_topology(stack: Gateway, tmp_path: Path,
                                                                     pb: SimpleNamespace) -> None:
    """deploy/gen-certs.sh (which docker-compose.yml relies on) makes a CA,
    a control-plane server certificate and client certificates that work
    with the binaries as compose wires them: mTLS everywhere."""
    import subprocess

    from harness import REPO

    certs = tmp_path / "certs"
    subprocess.run([str(REPO / "deploy" / "gen-certs.sh"), str(certs)], check=True,
                   capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    stack.stop_control_plane()
    stack.cp_env.update({"AIGW_TLS_CERT": str(certs / "control-plane.pem"),
                         "AIGW_TLS_KEY": str(certs / "control-plane.key"),
                         "AIGW_TLS_CLIENT_CA": str(certs / "ca.pem")})
    stack.start_control_plane()
    client = {"AIGW_CA_FILE": str(certs / "ca.pem"),
              "AIGW_TLS_CLIENT_CERT": str(certs / "data-plane.pem"),
              "AIGW_TLS_CLIENT_KEY": str(certs / "data-plane.key")}
    stack.apply_ok(gateway_config(stack.mock.url), env=client)
    stack.dp_env.update(client)
    stack.start_data_plane()
    stack.wait_key_known()
    # admin-web's certificate is accepted as a client too.
    web = {"AIGW_CA_FILE": str(certs / "ca.pem"),
           "AIGW_TLS_CLIENT_CERT": str(certs / "admin-web.pem"),
           "AIGW_TLS_CLIENT_KEY": str(certs / "admin-web.key")}
    ch = secure_channel(stack, Pki(certs), web)
    try:
        api = Api(pb, ch, stack.admin_token)
        assert api.call(api.admin.ListProviders, pb.admin_pb2.ListRequest()).providers
    finally:
        ch.close()
