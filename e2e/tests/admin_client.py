"""A Python automation client of the Admin API, as users would write one:
grpcio stubs generated from the repository's .proto files at test time."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import grpc

from harness import REPO

PROTO_DIR = REPO / "proto" / "proto"
RPC_TIMEOUT = 15.0


def generate_stubs(out: Path) -> Iterator[SimpleNamespace]:
    """Stubs generated with grpcio-tools from the repository's .proto files
    into `out`, importable while the generator is suspended."""
    from grpc_tools import protoc

    files = sorted(p.name for p in PROTO_DIR.glob("*.proto"))
    assert {"admin.proto", "identity.proto", "insight.proto"} <= set(files), files
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{PROTO_DIR}",
        f"--python_out={out}", f"--grpc_python_out={out}", *files,
    ])
    assert rc == 0, f"protoc failed ({rc}) on {files}"
    sys.path.insert(0, str(out))
    try:
        names = [f"{Path(f).stem}_pb2{suffix}" for f in files for suffix in ("", "_grpc")]
        yield SimpleNamespace(**{n: importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(out))


class Api:
    """The three Admin API services over one channel, with one bearer token."""

    def __init__(self, pb: SimpleNamespace, channel: grpc.Channel, token: str | None):
        self.pb = pb
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.admin = pb.admin_pb2_grpc.AdminServiceStub(channel)
        self.identity = pb.identity_pb2_grpc.IdentityServiceStub(channel)
        self.insight = pb.insight_pb2_grpc.InsightServiceStub(channel)

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=RPC_TIMEOUT)

    def refused(self, method: Callable[..., Any], request: Any) -> grpc.RpcError:
        try:
            self.call(method, request)
        except grpc.RpcError as e:
            return e
        raise AssertionError(f"{method} with {request!r} was not refused")


def login(pb: SimpleNamespace, channel: grpc.Channel, username: str, password: str) -> Api:
    anonymous = Api(pb, channel, None)
    r = anonymous.call(anonymous.identity.Login,
                       pb.identity_pb2.LoginRequest(username=username, password=password))
    assert r.session_token and r.user.username == username
    return Api(pb, channel, r.session_token)


def create_user(root: Api, username: str, role: str) -> str:
    password = f"{username}-e2e-password"
    r = root.call(root.identity.CreateUser, root.pb.identity_pb2.CreateUserRequest(
        username=username, password=password, role=role))
    assert r.user.role == role and not r.generated_password
    return password


