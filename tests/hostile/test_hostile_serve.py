"""The server under hostile use (issue 24, the server half): secrets on command lines, admin APIs, API keys on every
route (KServe HTTP + gRPC through the gateway, the OpenAI front), request limits, clients that leave, bad input
that used to give tracebacks or 500s, and a drain with requests in flight.

One server for the module: minilm (+ minilm-ids) with an API key, so Triton sits behind the gateway on private
loopback ports, and the OpenAI front. Every address is loopback.
"""

from __future__ import annotations

import contextlib
import json
import re
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

    limits = dict(max_texts=64, max_request_bytes=256 * 1024, max_request_tokens=4096, max_chat_messages=8)
    options = ServeOptions(models=("minilm",), unit=UNIT, http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port(), max_batch=8, api_keys=(KEY,), **limits).check()  # fmt: skip
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
    address = server.grpc_url if port == "public" else server.triton_grpc_url
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


def test_tritons_grpc_is_a_unix_socket_other_local_users_cannot_reach(served: Any) -> None:
    """A raw HTTP/2 client can send the restriction header (line feed included) that a local user reads in /proc:
    behind the gateway, Triton's gRPC is therefore no TCP port but a Unix socket in a folder only we may enter."""
    import os
    import subprocess

    server = served[0]
    socket_path = server._grpc_socket
    assert server.triton_grpc_url == f"unix:{socket_path}:{server._triton_ports[1]}"
    assert socket_path.parent.stat().st_mode & 0o777 == 0o700
    triton = next(p for p in psutil.Process().children(recursive=True) if "tritonserver" in " ".join(p.cmdline()[:1]))
    tcp = {c.laddr.port for c in triton.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert server._triton_ports[1] not in tcp and server._triton_ports[0] in tcp
    if os.geteuid() != 0:
        return  # only root can act as another user here; the folder's mode above is the guarantee
    probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n"
             "except PermissionError:\n    sys.exit(3)\n")  # fmt: skip
    other = subprocess.run(["/usr/bin/python3", "-c", probe, f"{socket_path}:{server._triton_ports[1]}"], user="nobody",
                           capture_output=True, timeout=30)  # fmt: skip
    assert other.returncode == 3, other.stderr[-300:]


def test_the_python_backends_shared_memory_regions_are_private(served: Any) -> None:
    """Every request's tensors pass through `/dev/shm/pytrtion<pid>-*`, which Triton's Python backend creates 0644."""
    import os

    from siliconlab.serve.server import private_regions

    regions = sorted(Path("/dev/shm").glob(f"pytrtion{os.getpid()}-*"))
    assert len(regions) >= 2, regions  # minilm and minilm-ids
    assert all(region.stat().st_mode & 0o777 == 0o600 for region in regions), [oct(r.stat().st_mode) for r in regions]
    assert private_regions() == regions


# -- 5: API keys ------------------------------------------------------------------------------------------------


def test_kserve_http_needs_the_key_and_health_stays_open(http: httpx.Client) -> None:
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY).status_code == 401
    wrong = http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers={"Authorization": f"Bearer {KEY}x"})
    assert wrong.status_code == 401 and "API key" in wrong.json()["error"]
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers={"Authorization": KEY}).status_code == 401
    assert http.get("/v2/models/minilm/config").status_code == 401
    assert http.get("/v2/models/minilm/config", headers=AUTH).status_code == 200
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers=AUTH).status_code == 200
    plain = _raw(http.base_url.__str__().rstrip("/"), b"POST /v2/models/minilm/infer HTTP/1.1\r\nHost: x\r\n"
                 + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(json.dumps(TEXT_BODY))}\r\n\r\n".encode()
                 + json.dumps(TEXT_BODY).encode())  # fmt: skip
    assert _status(plain) == 200 and b'"outputs"' in plain, plain[:300]  # not gzip the client never asked for
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


def test_inference_on_tritons_private_ports_needs_the_key_too(served: Any) -> None:
    """Another local user can reach Triton's loopback ports past the gateway: the models check the key themselves."""
    from siliconlab.client import Client, ServeError

    private = f"http://127.0.0.1:{served[0]._triton_ports[0]}/v2/models/minilm/infer"
    refused = httpx.post(private, json=TEXT_BODY, timeout=30)
    assert refused.status_code == 400 and "API key" in refused.json()["error"]
    ids = httpx.post(private.replace("minilm", "minilm-ids"), json=_ids_body([[101, 102]], [1, 2]), timeout=30)
    assert ids.status_code == 400 and "API key" in ids.json()["error"]
    assert httpx.post(private, json=TEXT_BODY, headers=AUTH, timeout=30).status_code == 200
    wrong = Client(served[0].triton_grpc_url, protocol="grpc", api_key="not-the-key-0123456789")
    with wrong as client, pytest.raises(ServeError, match="API key"):
        client.embed("hello")
    with Client(served[0].triton_grpc_url, protocol="grpc", api_key=KEY) as client:
        assert client.embed("hello").shape == (1, 384)


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


def test_key_files_others_can_read_are_refused_and_keys_never_come_from_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siliconlab.errors import UsageError
    from siliconlab.serve.auth import authorized, load_keys

    monkeypatch.delenv("SILICONLAB_API_KEY", raising=False)
    monkeypatch.delenv("SILICONLAB_API_KEY_FILE", raising=False)
    path = tmp_path / "keys"
    path.write_text(f"# serving keys\n{KEY}\n\nsecond-key-abcdefghijklmnop\n")
    path.chmod(0o644)
    with pytest.raises(UsageError, match="readable by other users .*chmod 600"):
        load_keys(path)
    path.chmod(0o600)
    assert load_keys(path) == (KEY, "second-key-abcdefghijklmnop")
    assert authorized(f"Bearer {KEY}", load_keys(path)) and authorized(
        "bearer second-key-abcdefghijklmnop", (KEY, "second-key-abcdefghijklmnop")
    )
    assert not authorized(None, (KEY,)) and not authorized(KEY, (KEY,)) and not authorized("Bearer \udcff", (KEY,))
    monkeypatch.setenv("SILICONLAB_API_KEY", "short")
    with pytest.raises(UsageError, match="shorter than 16"):
        load_keys()
    monkeypatch.setenv("SILICONLAB_API_KEY", KEY)
    assert load_keys() == (KEY,)
    import typer

    from siliconlab.cli.serve import serve

    names = {param.name for param in typer.main.get_command_from_info(typer.models.CommandInfo(callback=serve),
             pretty_exceptions_short=True, rich_markup_mode=None).params}  # fmt: skip
    assert "api_key_file" in names and not any(name in ("api_key", "key", "token") for name in names)


def test_binding_beyond_loopback_needs_a_key_and_the_banner_says_where(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from siliconlab.errors import UsageError

    monkeypatch.delenv("SILICONLAB_API_KEY", raising=False)
    with pytest.raises(UsageError, match="--host 0.0.0.0 exposes the server .* --insecure-no-auth"):
        ServeOptions(host="0.0.0.0", http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()).check()
    ServeOptions(host="0.0.0.0", http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                 insecure_no_auth=True).check()  # fmt: skip
    ServeOptions(host="::1", http_port=free_port(), grpc_port=free_port(), metrics_port=free_port()).check()
    server = Server(ServeOptions(host="0.0.0.0", api_keys=(KEY,)), [])
    assert server.http_url.startswith("http://0.0.0.0:") and server.grpc_url.startswith("0.0.0.0:")
    env = {k: v for k, v in __import__("os").environ.items() if k != "SILICONLAB_API_KEY"}
    run = subprocess.run([sys.executable, "-m", "siliconlab", "serve", "minilm", "--host", "0.0.0.0", "--http-port",
                          str(free_port())], capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert run.returncode == 2 and "--insecure-no-auth" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port()), "--metrics-port", str(free_port())]
    command = [sys.executable, "-m", "siliconlab", "serve", "minilm", "--host", "0.0.0.0", "--insecure-no-auth", *ports]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        first = process.stderr.readline()  # printed before any model loads
    finally:
        process.kill()
        process.wait()
    assert "warning" in first and "without an API key" in first, first


# -- 9/11: bad input answered in one line, never a traceback or a 500 ------------------------------------------


def _ids_body(rows: list[list[int]], shape: list[int]) -> dict[str, Any]:
    data = [v for row in rows for v in row]
    mask = [1] * len(data)
    return {"inputs": [{"name": "input_ids", "shape": shape, "datatype": "INT64", "data": data},
                       {"name": "attention_mask", "shape": shape, "datatype": "INT64", "data": mask}]}  # fmt: skip


@pytest.mark.parametrize("shape", [[1, 0], [0, 4], [2, 0]])
def test_zero_length_rows_to_the_ids_model_are_a_one_line_400(http: httpx.Client, shape: list[int]) -> None:
    reply = http.post("/v2/models/minilm-ids/infer", json=_ids_body([], shape), headers=AUTH)
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]
    assert "Traceback" not in message and 'File "/' not in message and "\n" not in message, message


@pytest.mark.parametrize("ids", [[2**63], [101, 2**64 + 5], [-1], [True, False], [101, True], [1.5]])
def test_token_ids_out_of_int64_or_booleans_are_400(front: httpx.Client, ids: list[Any]) -> None:
    for given in (ids, [ids]):
        reply = front.post("/v1/embeddings", json={"model": "minilm", "input": given}, headers=AUTH)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "input"


def _raw_post(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url + path, content=body, timeout=60,
                      headers={"Content-Type": "application/json", **AUTH, **(headers or {})})  # fmt: skip


@pytest.mark.parametrize("route,body", [
    ("/v1/embeddings", b'{"model": "minilm", "input": "caf\\ud800"}'),
    ("/v1/embeddings", b'{"model": "minilm", "input": ["fine", "\\ud800"]}'),
    ("/v1/chat/completions", b'{"model": "minilm", "messages": [{"role": "user", "content": "hi \\udfff"}]}'),
    ("/v1/chat/completions", b'{"model": "m\\ud800", "messages": [{"role": "user", "content": "hi"}]}'),
])  # fmt: skip
def test_a_lone_surrogate_is_a_json_400_on_both_openai_routes(served: Any, route: str, body: bytes) -> None:
    reply = _raw_post(served[1].url, route, body)
    assert reply.status_code in (400, 404), reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["error"]["message"]


def test_malformed_json_names_no_offset_as_param(served: Any) -> None:
    reply = _raw_post(served[1].url, "/v1/embeddings", b'{"model": "minilm", "input": [')
    assert reply.status_code == 400 and reply.json()["error"]["param"] is None, reply.text
    assert "not valid JSON" in reply.json()["error"]["message"]


def test_loadtest_takes_an_ipv6_loopback_url() -> None:
    from siliconlab.serve.loadtest.target import check_target, normalise_url

    for given in ("http://[::1]:8000", "[::1]:8000", "grpc://[::1]:8001"):
        url = normalise_url(given, "grpc" if given.startswith("grpc") else "http")
        check_target(url, allow_remote=False)
        assert "[::1]" in url


# -- 7: limits, work that outlives its client, chat fitting ------------------------------------------------------


def test_request_limits_are_413_or_400_with_a_clear_json_error(served: Any, front: httpx.Client) -> None:
    big = _raw_post(served[1].url, "/v1/embeddings", b'{"model": "minilm", "input": "' + b"a" * 300_000 + b'"}')
    assert big.status_code == 413 and "--max-request-bytes" in big.json()["error"]["message"]
    unauthenticated_big = httpx.post(served[1].url + "/v1/embeddings", content=b"x" * 300_000, timeout=60)
    assert unauthenticated_big.status_code == 401  # the key is checked before the body is read
    many = front.post("/v1/embeddings", json={"model": "minilm", "input": ["a text"] * 65}, headers=AUTH)
    assert many.status_code == 400 and "--max-texts" in many.json()["error"]["message"]
    ids = front.post("/v1/embeddings", json={"model": "minilm", "input": [[101] * 100] * 41}, headers=AUTH)
    assert ids.status_code == 400 and "--max-request-tokens" in ids.json()["error"]["message"]
    long_texts = ["word " * 300] * 16  # 16 x 302 tokens read > 4096
    tokens = front.post("/v1/embeddings", json={"model": "minilm", "input": long_texts}, headers=AUTH)
    assert tokens.status_code == 400 and "--max-request-tokens" in tokens.json()["error"]["message"], tokens.text
    chat = {"model": "any", "messages": [{"role": "user", "content": "hi"}] * 9}
    refused = front.post("/v1/chat/completions", json=chat, headers=AUTH)
    assert refused.status_code == 400 and "--max-chat-messages" in refused.json()["error"]["message"]


def _inference_count(http: httpx.Client) -> int:
    stats = http.get("/v2/models/minilm/stats", headers=AUTH).json()
    return int(stats["model_stats"][0]["inference_count"])


def test_an_embeddings_call_stops_when_its_client_leaves(served: Any, http: httpx.Client) -> None:
    texts = [f"text {i}: " + "several words for the model to read " * 40 for i in range(64)]  # 8 batches of 8
    before = _inference_count(http)
    body = json.dumps({"model": "minilm", "input": texts}).encode()
    host, port = served[1].url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + head + body)
        deadline = time.monotonic() + 30
        while _inference_count(http) == before and time.monotonic() < deadline:  # its first batch runs
            time.sleep(0.02)
    time.sleep(3)  # long enough for all 64 texts had the work gone on
    done = _inference_count(http) - before
    assert 0 < done < 64, f"{done} of 64 texts were embedded for a client that had left"


def test_chat_fitting_is_not_quadratic_and_drops_the_same_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer

    from siliconlab.models.minilm import tokenizer_directory
    from siliconlab.tasks import messages as module

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_directory())
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}> {{ m.content }}\n{% endfor %}<assistant>"

    def one_by_one(conversation: list[dict[str, str]], budget: int) -> tuple[list[int], int]:
        """The old fitting: drop the oldest turn and lay out again, until it fits."""
        conversation, dropped = [dict(m) for m in conversation], 0
        ids = module.layout_ids(tokenizer, conversation)
        while len(ids) > budget:
            earlier = [i for i, m in enumerate(conversation[:-1]) if m["role"] != "system"]
            if not earlier:
                break
            gone = conversation.pop(earlier[0])
            dropped += len(tokenizer(gone["content"], add_special_tokens=False)["input_ids"])
            ids = module.layout_ids(tokenizer, conversation)
        return ids, dropped

    def conversation(n: int) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": "be brief"}]
        turns += [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} " + "blah " * (i % 7)} for i in range(n)]
        return turns + [{"role": "user", "content": "and now?"}]

    for n in (3, 10, 41):
        assert module.fit(tokenizer, conversation(n), 100, 20) == one_by_one(conversation(n), 80)
    calls = 0
    original = module.layout_ids

    def counted(*args: Any) -> list[int]:
        nonlocal calls
        calls += 1
        return original(*args)

    monkeypatch.setattr(module, "layout_ids", counted)
    begin = time.perf_counter()
    ids, dropped = module.fit(tokenizer, conversation(1600), 512, 64)
    assert len(ids) <= 448 and dropped > 0
    assert calls <= 16, f"{calls} layouts for 1,600 messages"
    assert time.perf_counter() - begin < 10


# -- a hostile-input suite of our own ---------------------------------------------------------------------------


def _raw(url: str, request: bytes, wait_s: float = 10.0) -> bytes:
    """Send raw bytes, return what came back before the server closed or `wait_s` passed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(request)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
                if b"\r\n\r\n" in got and b"content-length" in got.lower():
                    head, _, body = got.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                    if len(body) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
        return got


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/") else 0


@pytest.mark.parametrize("which", ["gateway", "front"])
def test_oversized_headers_are_refused_and_the_server_goes_on(served: Any, which: str) -> None:
    url = served[0].http_url if which == "gateway" else served[1].url
    huge = b"X-Filler: " + b"a" * 200_000 + b"\r\n"
    got = _raw(url, b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
    assert _status(got) in (0, 400, 413, 431), got[:200]  # refused or the connection closed; never served
    assert httpx.get(f"{served[0].http_url}/v2/health/ready", timeout=10).status_code == 200


def test_a_kserve_body_over_the_gateway_bound_is_413_before_it_is_read(served: Any) -> None:
    head = f"POST /v2/models/minilm/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n".encode()
    got = _raw(served[0].http_url, head + b"Content-Length: 999999999999\r\n\r\n{")
    assert _status(got) == 413 and b"request body is over" in got, got[:200]
    chunked = head + b"Transfer-Encoding: chunked\r\n\r\n"
    assert _status(_raw(served[0].http_url, chunked + b"zz\r\n")) in (0, 400), "a bad chunk size"


@pytest.mark.parametrize("which", ["gateway", "front"])
def test_a_body_that_stops_coming_is_timed_out_and_others_are_answered(
    served: Any, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siliconlab.serve import front_guard

    monkeypatch.setattr(front_guard, "BODY_TIMEOUT_S", 1.0)
    url = served[0].http_url if which == "gateway" else served[1].url
    path = b"/v2/models/minilm/infer" if which == "gateway" else b"/v1/embeddings"
    host, port = url.removeprefix("http://").split(":")
    slow = []
    for _ in range(30):  # slowloris: headers, then a few bytes of a promised 10 kB, then silence
        sock = socket.create_connection((host, int(port)), timeout=20)
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {KEY}\r\nContent-Length: 10000\r\n\r\n{{".encode())  # fmt: skip
        slow.append(sock)
    begin = time.monotonic()
    assert httpx.post(f"{served[0].http_url}/v2/models/minilm/infer", json=TEXT_BODY, headers=AUTH,
                      timeout=30).status_code == 200  # fmt: skip
    assert time.monotonic() - begin < 10
    answered = 0
    for sock in slow:
        with sock:
            got = b""
            with contextlib.suppress(OSError):
                got = sock.recv(4096)
            answered += _status(got) == 408
    assert answered == len(slow), f"only {answered} of {len(slow)} stalled bodies were answered 408"


@pytest.mark.parametrize("content_type,body", [
    ("text/plain", b'{"model": "minilm", "input": "hi"}'),
    ("application/x-www-form-urlencoded", b"model=minilm&input=hi"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"input\"\r\n\r\nhi\r\n--x--"),
    ("application/json", b""),
    ("application/json", b"null"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b'{"model": "minilm", "input": [[1e400]]}'),
    ("application/json", b'{"model": "minilm", "input": "hi", "dimensions": 1' + b"0" * 400 + b"}"),
    ("application/json", b'{"model": "minilm", "input": {"a": 1}}'),
])  # fmt: skip
def test_wrong_content_types_and_odd_bodies_are_a_json_4xx(served: Any, content_type: str, body: bytes) -> None:
    reply = _raw_post(served[1].url, "/v1/embeddings", body, {"Content-Type": content_type})
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:300])
    assert reply.json()["error"]["message"]


def test_kserve_with_odd_bodies_is_a_4xx_never_a_5xx_with_a_traceback(http: httpx.Client) -> None:
    bodies = [b"", b"{", b"null", b"[]", b'{"inputs": 5}', b'{"inputs": []}', b'{"inputs": [{"name": "text", "shape": '
              b'[1, 1], "datatype": "BYTES", "data": [1, 2, 3]}]}', b'{"inputs": [{"name": "text", "shape": [-1, 1], '
              b'"datatype": "BYTES", "data": ["a"]}]}', b'{"inputs": [{"name": "text", "shape": [99999999999, 1], '
              b'"datatype": "BYTES", "data": ["a"]}]}', json.dumps({**TEXT_BODY, "outputs": 3}).encode()]  # fmt: skip
    for body in bodies:
        reply = http.post("/v2/models/minilm/infer", content=body, headers={**AUTH, "Content-Type": "text/plain"})
        assert reply.status_code == 400, (body, reply.status_code, reply.text)
        assert "\n" not in reply.text.strip() and reply.json()["error"], body
    assert http.post("/v2/models/minilm/infer", json=TEXT_BODY, headers=AUTH).status_code == 200


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "18446744073709551616", "1.5",
                                   "true", '"101"'])  # fmt: skip
def test_kserve_int64_values_triton_cannot_parse_are_400_through_the_gateway(http: httpx.Client, value: str) -> None:
    body = json.dumps(_ids_body([[101, 102]], [1, 2])).replace("102", value).encode()
    reply = http.post("/v2/models/minilm-ids/infer", content=body, headers=AUTH)
    assert reply.status_code == 400, (value, reply.status_code, reply.text)
    assert reply.json()["error"].startswith("the body is not a valid KServe request: Unable to parse 'data'")
    assert http.post("/v2/models/minilm-ids/infer", json=_ids_body([[101, 102]], [1, 2]), headers=AUTH).is_success


def test_huge_n_negative_max_tokens_and_odd_chat_values_are_400() -> None:
    from siliconlab.serve.openai_backend import ApiError, Backend
    from siliconlab.serve.openai_chat import ChatRequest, check_request

    backend = Backend("127.0.0.1:1", 8, {}, {"tiny": 100})
    hi = [{"role": "user", "content": "hi"}]
    for change in ({"n": 10**30}, {"n": 0}, {"max_tokens": -5}, {"max_tokens": 0}, {"max_completion_tokens": 10**20},
                   {"messages": [{"role": "root", "content": "hi"}]}, {"messages": [{"role": "user", "content": ""}]},
                   {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
                   {"messages": [{"role": "assistant", "content": "hi"}]}):  # fmt: skip
        with pytest.raises(ApiError) as refused:
            check_request(backend, ChatRequest(**{"model": "tiny", "messages": hi, **change}))
        assert refused.value.status == 400, change


@pytest.mark.parametrize("model", ["mínilm", "мини", "../../etc/passwd", "minilm/../../x", "%2e%2e", "a" * 5000,
                                   "minilm\u0000", "minilm-ids"])  # fmt: skip
def test_odd_model_names_are_a_json_404(front: httpx.Client, model: str) -> None:
    reply = front.post("/v1/embeddings", json={"model": model, "input": "hi"}, headers=AUTH)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found", reply.text[:200]


PATHS = [b"/v2/models/../repository/index", b"/v2/models/..%2f..%2frepository/index", b"//v2/repository/index",
         b"/v2/./REPOSITORY/index", b"/v2/models/minilm/../../logging", b"/v2/models/m%C3%ADnilm/infer",
         b"/v2/models/%00/infer", b"/v2/../../../etc/passwd"]  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
def test_path_tricks_never_reach_an_admin_api_or_a_5xx(served: Any, path: bytes) -> None:
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    got = _raw(served[0].http_url, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 0\r\n\r\n")
    assert 400 <= _status(got) < 500 or _status(got) == 0, got[:300]
    assert b"READY" not in got and b"log_verbose" not in got


def test_smuggling_and_bad_authorization_bytes_are_refused(served: Any) -> None:
    smuggle = (b"POST /v2/models/minilm/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked"
               b"\r\n\r\n0\r\n\r\nPOST /v2/repository/index HTTP/1.1\r\nHost: x\r\n\r\n")  # fmt: skip
    for url in (served[0].http_url, served[1].url):
        got = _raw(url, smuggle)  # h11 reads the chunked body (RFC 9112 6.3), so the front's answer is its 404
        assert _status(got) in (0, 400, 401, 404) and b"200 OK" not in got and b"READY" not in got, got[:200]
        odd = _raw(
            url, b"GET /v2/models/minilm/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x00x\r\n\r\n"
        )
        assert _status(odd) in (0, 400, 401), odd[:200]


def test_concurrent_clients_that_leave_do_not_hold_the_server(served: Any, http: httpx.Client) -> None:
    texts = [f"text {i}: " + "a sentence the model has to read " * 30 for i in range(16)]
    body = json.dumps({"model": "minilm", "input": texts}).encode()
    host, port = served[1].url.removeprefix("http://").split(":")
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode())  # fmt: skip

    def leave() -> None:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + body)
            time.sleep(0.1)

    threads = [threading.Thread(target=leave) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    begin = time.monotonic()
    reply = httpx.post(f"{served[1].url}/v1/embeddings", json={"model": "minilm", "input": "still here?"},
                       headers=AUTH, timeout=60)  # fmt: skip
    waited = time.monotonic() - begin
    assert reply.status_code == 200
    assert waited < 8, f"the next request waited {waited:.1f} s behind 20 abandoned ones"


# -- 8: the drain (last: it stops the module's server) -----------------------------------------------------------


def test_zz_sigterm_drain_refuses_new_work_first_then_finishes_every_accepted_request(served: Any, minilm: Any) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.grpc import service_pb2 as pb

    server = served[0]
    batches = [[f"batch {b} text {i}: " + "words to keep the model busy " * 40 for i in range(8)] for b in range(3)]
    answers: dict[int, Any] = {}
    keepalive = httpx.Client(base_url=server.http_url, headers=AUTH, timeout=120)
    assert keepalive.get("/v2/health/ready").status_code == 200  # a connection open before the drain

    def http_call(index: int) -> None:
        body = {"inputs": [{"name": "text", "shape": [8, 1], "datatype": "BYTES", "data": batches[index]}]}
        answers[index] = httpx.post(f"{server.http_url}/v2/models/minilm/infer", json=body, headers=AUTH, timeout=120)

    def grpc_call() -> None:
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            tensor = grpcclient.InferInput("text", [8, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[t.encode()] for t in batches[0]], dtype=object))
            try:
                answers[3] = client.infer("minilm", [tensor], headers={"authorization": f"Bearer {KEY}"})
            except Exception as exc:  # noqa: BLE001 - asserted below
                answers[3] = exc

    threads = [threading.Thread(target=http_call, args=(i,)) for i in range(3)] + [threading.Thread(target=grpc_call)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while server.gateway.drain._inflight < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.gateway.drain._inflight == 4, "the requests were not in flight"
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    while not server.gateway.drain.draining:
        time.sleep(0.01)
    assert keepalive.get("/v2/health/ready").status_code == 503
    late = keepalive.post("/v2/models/minilm/infer", json=TEXT_BODY)
    assert late.status_code == 503 and "draining" in late.json()["error"]
    with pytest.raises(grpc.RpcError) as refused:
        _grpc_call(server.grpc_url, "ModelReady", pb.ModelReadyRequest(name="minilm"), pb.ModelReadyResponse,
                   [("authorization", f"Bearer {KEY}")])  # fmt: skip
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.gateway.drain._inflight > 0, "the accepted requests ended before the refusals were checked"
    for thread in threads:
        thread.join(120)
    stopping.join(60)
    keepalive.close()
    for index in range(3):
        assert answers[index].status_code == 200, answers[index].text
        output = answers[index].json()["outputs"][0]
        got = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
        want = minilm.encode(batches[index])
        assert float((got * want).sum(axis=1).min()) > 0.9999
    assert not isinstance(answers[3], Exception), answers[3]
    assert answers[3].as_numpy("embedding").shape == (8, 384)
