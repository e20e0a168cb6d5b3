"""The local Ray of `batch --engine ray` listens on every interface (Ray 2.60 has no setting that binds its gRPC
servers to loopback), so its token authentication stays on: a caller without the token is refused, the token is
on no process's command line and in no file, and RAY_AUTH_MODE=disabled is refused in one line."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from siliconlab.errors import UsageError


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    pytest.importorskip("ray", reason="ray is not installed (the batch extra)")
    monkeypatch.setenv("HOME", str(tmp_path))  # where Ray would write ~/.ray/auth_token
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    os.environ.pop("RAY_AUTH_TOKEN", None)  # set by the engine for its cluster


def test_a_local_ray_refuses_callers_without_its_token_which_no_one_else_can_read(clean_env: Path) -> None:
    import grpc
    import ray
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    from siliconlab.batch.ray_engine import _start_ray

    _start_ray(None)
    try:
        token = os.environ["RAY_AUTH_TOKEN"]
        assert len(token) == 64
        lines = [" ".join(p.info["cmdline"] or ()) for p in psutil.process_iter(["cmdline"])]
        assert not any(token in line for line in lines)
        assert not (clean_env / ".ray" / "auth_token").exists()
        port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            nodes = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo
            with pytest.raises(grpc.RpcError) as refused:
                nodes(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = nodes(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=10,
                           metadata=[("authorization", f"Bearer {token}")])  # fmt: skip
            assert len(answer.node_info_list) == 1
    finally:
        ray.shutdown()


def test_ray_auth_mode_disabled_is_refused_before_ray_starts(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from siliconlab.batch.ray_engine import _start_ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(UsageError, match="RAY_AUTH_MODE=disabled would start the local Ray without authentication"):
        _start_ray(None)
