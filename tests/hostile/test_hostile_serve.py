"""The server under hostile use (issue 24, the server half): secrets on command lines, admin APIs, API keys on every
route (KServe HTTP + gRPC through the gateway, the OpenAI front), request limits, clients that leave, bad input
that used to give tracebacks or 500s, and a drain with requests in flight.

One server for the module: minilm (+ minilm-ids) with an API key, so Triton sits behind the gateway on private
loopback ports, and the OpenAI front. Every address is loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import psutil
import pytest

from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.models import bindings_for
from siliconlab.serve.server import Server

UNIT = "onnxruntime-cpu-fp32"
KEY = "hostile-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXT_BODY = {"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": ["I loved this film"]}]}


@pytest.fixture(scope="module")
def minilm() -> Any:
    import siliconlab

    return siliconlab.load("minilm", unit=UNIT)


@pytest.fixture(scope="module")
def served(minilm: Any) -> Any:
    from siliconlab.serve.openai_front import Front

    options = ServeOptions(models=("minilm",), unit=UNIT, http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port(), max_batch=8, api_keys=(KEY,), max_texts=64,
                           max_request_bytes=256 * 1024, max_request_tokens=4096, max_chat_messages=8).check()  # fmt: skip
    bindings = bindings_for("minilm", minilm)
    server = Server(options, bindings)
    server.start()
    front = Front(server, bindings, "127.0.0.1", free_port())
    try:
        front.start()
        yield server, front
    finally:
        front.stop()
        server.stop()


@pytest.fixture
def http(served: Any) -> Any:
    with httpx.Client(base_url=served[0].http_url, timeout=60) as client:
        yield client


@pytest.fixture
def front(served: Any) -> Any:
    with httpx.Client(base_url=served[1].url, timeout=60) as client:
        yield client


def _grpc_call(address: str, method: str, request: Any, response_type: Any, metadata: Any = None) -> Any:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}",
                                   request_serializer=type(request).SerializeToString,
                                   response_deserializer=response_type.FromString)  # fmt: skip
        return call(request, metadata=metadata, timeout=30)


# -- 4: no secret on a command line; Triton's admin APIs off for everyone ----------------------------------------


def test_no_secret_on_any_command_line_of_the_server(served: Any) -> None:
    children = psutil.Process().children(recursive=True)
    triton = [p for p in children if "tritonserver" in " ".join(p.cmdline()[:1])]
    assert triton, "no tritonserver child found"
    for process in children:
        raw = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode("utf-8", "replace")
        assert KEY not in raw
        for arg in raw.split("\0"):
            if "restricted" in arg and "=" in arg:  # Triton's restriction: a value no request can carry
                assert "\n" in arg.split("=", 2)[-1], f"a usable restriction token is on the command line: {arg}"


@pytest.mark.parametrize("port", ["public", "private"])
def test_triton_admin_http_apis_are_refused(served: Any, port: str) -> None:
    server = served[0]
    base = server.http_url if port == "public" else f"http://127.0.0.1:{server._triton_ports[0]}"
    # the restriction's header, as a local user reads it from /proc: its value cannot be sent whole
    header = {"siliconlab-admin-api": "off", **AUTH}
    for method, path in [("POST", "/v2/repository/index"), ("POST", "/v2/repository/models/minilm/unload"),
                         ("POST", "/v2/repository/models/minilm/load"), ("GET", "/v2/systemsharedmemory/status"),
                         ("POST", "/v2/systemsharedmemory/region/x/register"), ("GET", "/v2/trace/setting"),
                         ("POST", "/v2/trace/setting"), ("GET", "/v2/logging"), ("POST", "/v2/logging")]:  # fmt: skip
        reply = httpx.request(method, base + path, headers=header, content=b"{}", timeout=30)
        assert 400 <= reply.status_code < 500, (method, path, reply.status_code, reply.text)
    assert httpx.post(f"{server.http_url}/v2/models/minilm/infer", json=TEXT_BODY, headers=AUTH).status_code == 200


@pytest.mark.parametrize("port", ["public", "private"])
def test_triton_admin_grpc_apis_are_refused(served: Any, port: str) -> None:
    from tritonclient.grpc import service_pb2 as pb

    server = served[0]
    address = server.grpc_url if port == "public" else f"127.0.0.1:{server._triton_ports[1]}"
    metadata = [("authorization", f"Bearer {KEY}"), ("triton-grpc-protocol-siliconlab-admin-api", "off")]
    calls = [("RepositoryIndex", pb.RepositoryIndexRequest(), pb.RepositoryIndexResponse),
             ("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="minilm"),
              pb.RepositoryModelUnloadResponse),
             ("SystemSharedMemoryRegister", pb.SystemSharedMemoryRegisterRequest(name="x", key="/x", byte_size=8),
              pb.SystemSharedMemoryRegisterResponse),
             ("LogSettings", pb.LogSettingsRequest(), pb.LogSettingsResponse),
             ("TraceSetting", pb.TraceSettingRequest(), pb.TraceSettingResponse)]  # fmt: skip
    for method, request, response in calls:
        with pytest.raises(grpc.RpcError) as refused:
            _grpc_call(address, method, request, response, metadata)
        assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED), method
    assert _grpc_call(address, "ModelReady", pb.ModelReadyRequest(name="minilm"), pb.ModelReadyResponse,
                      metadata).ready  # fmt: skip


# -- 5: API keys ------------------------------------------------------------------------------------------------


def test_kserve_http_needs_the_key_and_health_stays_open(http: httpx.Client) -> None:
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY).status_code == 401
    wrong = http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers={"Authorization": f"Bearer {KEY}x"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers={"Authorization": KEY}).status_code == 401
    assert http.get("/v2/models/minilm/config").status_code == 401
    assert http.get("/v2/models/minilm/config", headers=AUTH).status_code == 200
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers=AUTH).status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2/health/live").status_code == 200


def test_kserve_grpc_needs_the_key_in_metadata(served: Any) -> None:
    from tritonclient.grpc import service_pb2 as pb

    address = served[0].grpc_url
    for metadata in (None, [("authorization", "Bearer nope-nope-nope-nope")]):
        with pytest.raises(grpc.RpcError) as refused:
            _grpc_call(address, "ModelReady", pb.ModelReadyRequest(name="minilm"), pb.ModelReadyResponse, metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _grpc_call(address, "ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse).ready


def test_the_python_client_sends_the_key_from_the_environment(served: Any, minilm: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from siliconlab.client import Client, ServeError

    server = served[0]
    for url, protocol in ((server.http_url, "http"), (server.grpc_url, "grpc")):
        monkeypatch.delenv("SILICONLAB_API_KEY", raising=False)
        with Client(url, protocol=protocol) as client, pytest.raises(ServeError) as refused:
            client.embed("hello")
        assert "API key" in str(refused.value)
        monkeypatch.setenv("SILICONLAB_API_KEY", KEY)
        with Client(url, protocol=protocol) as client:
            got = client.embed("hello")
        assert float(np.dot(got[0], minilm.encode(["hello"])[0])) > 0.9999


def test_the_openai_front_needs_the_key(front: httpx.Client) -> None:
    body = {"model": "minilm", "input": "hello"}
    refused = front.post("/v1/embeddings", json=body)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert front.get("/v1/models").status_code == 401
    assert front.post("/v1/embeddings", json=body, headers=AUTH).status_code == 200


def test_the_load_test_sends_the_key_from_the_environment(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from siliconlab.serve.loadtest.client import TritonLoadClient

    async def one(protocol: str) -> Any:
        url = served[0].http_url if protocol == "http" else f"grpc://{served[0].grpc_url}"
        async with TritonLoadClient(url, protocol, "minilm", 2) as client:
            await client.ready()
            return await client.infer("a text", 30)

    monkeypatch.setenv("SILICONLAB_API_KEY", KEY)
    for protocol in ("http", "grpc"):
        assert asyncio.run(one(protocol))["embedding"].shape == (1, 384)
