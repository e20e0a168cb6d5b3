"""`siliconlab serve` as a user runs it (a subprocess): a bounded queue under overload, then drain on SIGTERM
(through the gateway, the CLI's default: new work refused first, then every accepted request answered).

One server for the module, with a tiny queue (2) and batch (4) so that a burst overflows it for sure.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from serve_helpers import UNIT, cosine, text_body

from siliconlab.serve.config import free_port

READY = "Ctrl-C or SIGTERM drains and stops."


@pytest.fixture(scope="module")
def server() -> Any:
    port, metrics, grpc_port = free_port(), free_port(), free_port()
    command = [sys.executable, "-m", "siliconlab", "serve", "minilm", "--unit", UNIT, "--http-port", str(port),
               "--grpc-port", str(grpc_port), "--metrics-port", str(metrics), "--max-batch", "4",
               "--max-queue", "2", "--max-queue-delay-us", "0"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 150
    while not any(READY in line for line in lines):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not get ready: {''.join(lines)}{process.stderr.read()}")
        time.sleep(0.2)
    assert any("curl -s http://127.0.0.1:" in line for line in lines)
    yield process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}/metrics", f"127.0.0.1:{grpc_port}"
    if process.poll() is None:
        process.kill()
        process.wait()


def _post_all(url: str, bodies: list[Any]) -> list[tuple[int, Any, float]]:
    """Send every body at once (one thread each): (status, json, time answered) per body."""
    answers: list[Any] = [None] * len(bodies)

    def one(index: int) -> None:
        reply = httpx.post(f"{url}/v2/models/minilm/infer", json=bodies[index], timeout=120)
        answers[index] = (reply.status_code, reply.json(), time.monotonic())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    return answers, threads


def _vectors(answer: Any) -> np.ndarray:
    output = answer["outputs"][0]
    return np.array(output["data"], dtype=np.float32).reshape(output["shape"])


def test_overload_rejects_with_unavailable_and_answers_every_accepted_request(server: Any, minilm: Any) -> None:
    _, url, _, _ = server
    texts = [f"request {i}: " + "a fairly long sentence about nothing much " * 12 for i in range(48)]
    answers, threads = _post_all(url, [text_body([t]) for t in texts])
    for thread in threads:
        thread.join()
    accepted = [i for i, (status, _, _) in enumerate(answers) if status == 200]
    rejected = [answers[i] for i in range(len(texts)) if i not in accepted]
    assert accepted and rejected, f"{len(accepted)} accepted, {len(rejected)} rejected"
    for status, body, _ in rejected:
        assert status == 503 and "Exceeds maximum queue size" in body["error"], body
    reference = minilm.encode([texts[i] for i in accepted])
    got = np.concatenate([_vectors(answers[i][1]) for i in accepted])
    assert cosine(got, reference).min() >= 0.99999
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def _pending(metrics: str) -> float:
    for line in httpx.get(metrics, timeout=30).text.splitlines():
        if line.startswith('nv_inference_pending_request_count{model="minilm"'):
            return float(line.split()[-1])
    return 0.0


def test_sigterm_drains_in_flight_requests_and_exits_0(server: Any, minilm: Any) -> None:
    process, url, metrics, grpc_url = server
    kept_alive = httpx.Client(base_url=url, timeout=60)
    assert kept_alive.get("/v2/health/ready").status_code == 200  # a keep-alive connection open before the drain
    texts = [[f"batch {b} text {i}: " + "words to keep the model busy for a while " * 12 for i in range(4)]
             for b in range(3)]  # fmt: skip
    connections = []
    for index, batch in enumerate(texts):  # sent whole before the signal: each request is accepted, none answered yet
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=120)
        connection.request("POST", "/v2/models/minilm/infer", json.dumps(text_body(batch)))
        connections.append(connection)
        if index == 0:  # let the first start running: three arriving at once would overflow the queue of 2
            time.sleep(0.3)
    deadline = time.monotonic() + 20
    while _pending(metrics) < 1 and time.monotonic() < deadline:  # queued behind the first, so in flight
        time.sleep(0.05)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    # The drain refuses new work first (on the kept-alive connection too), while the accepted requests still run.
    deadline = time.monotonic() + 10
    while kept_alive.get("/v2/health/ready").status_code != 503 and time.monotonic() < deadline:
        time.sleep(0.02)
    late = kept_alive.post("/v2/models/minilm/infer", json=text_body(["too late"]))
    assert late.status_code == 503 and "draining" in late.json()["error"], late.text
    with grpc.insecure_channel(grpc_url) as channel, pytest.raises(grpc.RpcError) as refused:
        channel.unary_unary("/inference.GRPCInferenceService/ModelReady")(b"\n\x06minilm", timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # never NOT_FOUND "unknown model"
    kept_alive.close()
    answers = []
    for connection in connections:
        reply = connection.getresponse()
        answers.append((reply.status, json.loads(reply.read()), time.monotonic()))
        connection.close()
    assert process.wait(timeout=60) == 0
    exited = time.monotonic() - signalled
    assert [status for status, _, _ in answers] == [200] * 3, answers
    assert max(at for _, _, at in answers) > signalled, "no request was still in flight at SIGTERM"
    for batch, (_, body, _) in zip(texts, answers):
        assert cosine(_vectors(body), minilm.encode(batch)).min() >= 0.99999
    assert exited < 20, f"took {exited:.1f} s to exit"
    assert "stopped: drained and shut down" in process.stderr.read()
