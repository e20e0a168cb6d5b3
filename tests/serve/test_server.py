"""The embedded Triton server end to end: one server for the module (minilm, minilm-ids, sentiment, a model
that raises on purpose) plus the OpenAI front, on free loopback ports; answers checked against the pipelines."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import numpy as np
import pytest
from serve_helpers import UNIT, cosine, text_body

from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.models import bindings_for, embedding_binding
from siliconlab.serve.server import Server

TEXTS = ["I loved this film, the acting was superb.", "Worst purchase ever.", "hello", "The cat sat on the mat."]


class Faulty:
    """A pipeline whose model call raises for texts containing 'boom' (an exception inside a model)."""

    task = "embedding"

    def __init__(self, pipeline: Any):
        self.pipeline, self.loaded, self.model, self.unit = pipeline, pipeline.loaded, "faulty", pipeline.unit
        self.prepare = pipeline.prepare

    def run_prepared(self, prepared: Any, output: str) -> np.ndarray:
        if any("boom" in text for text in self.loaded.tokenizer.batch_decode(prepared.rows)):
            raise RuntimeError("injected fault\nwith a second line")
        return self.pipeline.run_prepared(prepared, output)


@pytest.fixture(scope="module")
def served(minilm: Any, sentiment: Any) -> Any:
    from siliconlab.serve.openai_front import Front

    options = ServeOptions(models=("minilm", "sentiment"), unit=UNIT, http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port(), max_batch=8).check()  # fmt: skip
    bindings = [*bindings_for("minilm", minilm), *bindings_for("sentiment", sentiment),
                embedding_binding("faulty", Faulty(minilm))]  # fmt: skip
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


def post(http: httpx.Client, model: str, body: Any) -> httpx.Response:
    return http.post(f"/v2/models/{model}/infer", json=body)


def test_curl_style_json_answers_match_the_pipeline(http: httpx.Client, minilm: Any) -> None:
    reply = post(http, "minilm", text_body(TEXTS))
    assert reply.status_code == 200, reply.text
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    vectors = np.array(outputs["embedding"]["data"], dtype=np.float32).reshape(len(TEXTS), -1)
    assert outputs["embedding"]["shape"] == [len(TEXTS), 384]
    assert cosine(vectors, minilm.encode(TEXTS)).min() >= 0.99999
    assert outputs["truncated"]["data"] == [False] * len(TEXTS)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_python_client_over_http_and_grpc(served: Any, protocol: str, minilm: Any, sentiment: Any) -> None:
    from siliconlab.client import Client

    server = served[0]
    url = server.http_url if protocol == "http" else server.grpc_url
    with Client(url, protocol=protocol) as client:
        assert client.ready() and client.ready("minilm")
        many = [f"{i}: {t}" for i, t in enumerate(TEXTS * 5)]  # 20 texts: sent as requests of max batch 8
        assert cosine(client.embed(many), minilm.encode(many)).min() >= 0.99999
        answers, expected = client.classify(TEXTS[:2]), sentiment.classify(TEXTS[:2])
        assert [a["label"] for a in answers] == [e["label"] for e in expected] == ["positive", "negative"]
        for got, want in zip(answers, expected):
            assert got["scores"] == pytest.approx(want["scores"], abs=1e-4)


def test_token_ids_model_matches_the_text_model(http: httpx.Client, minilm: Any) -> None:
    encoded = minilm.loaded.tokenizer(["hello world"], return_tensors="np")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    reply = post(http, "minilm-ids", _ids_body(ids[0].tolist(), mask[0].tolist()))
    assert reply.status_code == 200, reply.text
    vector = np.array(reply.json()["outputs"][0]["data"], dtype=np.float32)
    assert cosine(vector, minilm.encode(["hello world"]))[0] >= 0.99999


def _ids_body(ids: list[int], mask: list[int] | None = None) -> dict[str, Any]:
    tensors = {"input_ids": ids, "attention_mask": mask or [1] * len(ids)}
    return {"inputs": [{"name": k, "shape": [1, len(ids)], "datatype": "INT64", "data": v} for k, v in tensors.items()]}


BAD = {
    "wrong dtype": (
        "minilm",
        {"inputs": [{"name": "text", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]},
        400,
        "data-type is 'FP32'",
    ),
    "wrong shape": (
        "minilm",
        {"inputs": [{"name": "text", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]},
        400,
        "unexpected shape",
    ),
    "missing input": ("minilm", {"inputs": []}, 400, "missing required input"),
    "empty string": ("minilm", text_body([""]), 400, "the text is empty"),
    "blank item of a batch": ("sentiment", text_body(["fine", "   "]), 400, "text 1 is empty"),
    "batch over the limit": ("minilm", text_body(["a"] * 9), 400, "batch-size must be <= 8"),
    "unknown model": ("nope", text_body(["a"]), 404, "unknown model"),
    "token id out of range": ("minilm-ids", _ids_body([101, 999999, 102]), 400, "token ids must lie in"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_a_4xx_with_a_clear_message(http: httpx.Client, case: str) -> None:
    model, body, status, words = BAD[case]
    reply = post(http, model, body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["error"] and "Traceback" not in reply.text
    assert post(http, "minilm", text_body(["still answering"])).status_code == 200


def test_malformed_json_is_refused_and_the_server_keeps_answering(http: httpx.Client) -> None:
    reply = http.post("/v2/models/minilm/infer", content=b'{"inputs": [')
    # Triton's own HTTP frontend answers unparsable JSON with 500 (not 4xx); the message says what is wrong.
    assert reply.status_code == 500 and "failed to parse the request JSON" in reply.json()["error"]
    assert post(http, "minilm", text_body(["still answering"])).status_code == 200


def test_invalid_utf8_and_unknown_model_over_grpc(served: Any) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(served[0].grpc_url)
    tensor = grpcclient.InferInput("text", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[b"caf\xe9 \xff"]], dtype=object))
    with pytest.raises(InferenceServerException) as bad:
        client.infer("minilm", [tensor])
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT" and "not valid UTF-8" in bad.value.message()
    with pytest.raises(InferenceServerException) as missing:
        client.infer("nope", [tensor])
    assert missing.value.status() == "StatusCode.NOT_FOUND"
    client.close()


def test_a_1mb_text_is_truncated_with_a_notice(http: httpx.Client, minilm: Any) -> None:
    text = "word " * 200_000
    reply = post(http, "minilm", {**text_body([text]), "outputs": [{"name": "embedding"}, {"name": "truncated"},
                                                                   {"name": "tokens"}]})  # fmt: skip
    assert reply.status_code == 200, reply.text[:300]
    outputs = {o["name"]: o["data"] for o in reply.json()["outputs"]}
    assert outputs["truncated"] == [True] and outputs["tokens"] == [minilm.loaded.max_length]
    # the model sees the first max_length tokens only: the same as a text just long enough to be cut there
    assert cosine(np.array(outputs["embedding"]), minilm.encode(["word " * 600]))[0] >= 0.99999


def _concurrently(http: httpx.Client, calls: list[tuple[str, Any]]) -> list[httpx.Response]:
    replies: list[Any] = [None] * len(calls)

    def one(index: int) -> None:
        replies[index] = post(http, *calls[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def test_bad_and_failing_requests_fail_alone_in_a_shared_batch(http: httpx.Client, minilm: Any) -> None:
    calls = [("faulty", text_body([t])) for t in TEXTS] + [("faulty", text_body(["boom"])), ("faulty", text_body([""]))]
    replies = _concurrently(http, calls * 2)
    for (_, body), reply in zip(calls * 2, replies):
        text = body["inputs"][0]["data"][0]
        if text == "boom":
            assert reply.status_code == 500
            assert (
                reply.json()["error"]
                == "model 'faulty' failed on this request: RuntimeError: injected fault with a second line"
            )
        elif not text:
            assert reply.status_code == 400 and "empty" in reply.json()["error"]
        else:
            assert reply.status_code == 200, reply.text
            vector = np.array(reply.json()["outputs"][0]["data"], dtype=np.float32)
            assert cosine(vector, minilm.encode([text]))[0] >= 0.99999


def test_a_client_that_disconnects_mid_request_leaves_the_server_healthy(served: Any, http: httpx.Client) -> None:
    server = served[0]
    body = httpx.Request("POST", "/", json=text_body(["a review of a film that goes on and on " * 20] * 2)).content
    for cut in (True, False):  # half a body, then a whole one, the client gone before the answer either way
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.options.http_port)) as sock:
                head = f"POST /v2/models/minilm/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                sock.sendall(head.encode() + (body[: len(body) // 2] if cut else body))
    assert http.get("/v2/health/ready").status_code == 200
    assert post(http, "minilm", text_body(["still answering"])).status_code == 200
    stats = http.get("/v2/models/minilm/stats").json()["model_stats"][0]["inference_stats"]
    assert stats["fail"]["count"] == 0  # abandoned requests were computed, never half-failed


def test_health_and_metrics(served: Any, http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    metrics = httpx.get(served[0].metrics_url, timeout=30).text
    assert 'nv_inference_request_success{model="minilm"' in metrics
    config = http.get("/v2/models/sentiment/config").json()
    assert config["parameters"]["labels"]["string_value"] == "negative,positive"
    # no queue bound by default: Triton's bounded queue loses batcher wake-ups (0.5 s stalls; serve/config.py)
    assert config["dynamic_batching"].get("default_queue_policy", {}).get("max_queue_size", 0) == 0


def test_openai_client_against_the_front(served: Any, minilm: Any) -> None:
    import openai

    front = served[1]
    client = openai.OpenAI(base_url=f"{front.url}/v1", api_key="unused", max_retries=0)
    reply = client.embeddings.create(model="minilm", input=TEXTS)
    vectors = np.array([d.embedding for d in reply.data], dtype=np.float32)
    assert cosine(vectors, minilm.encode(TEXTS)).min() >= 0.99999
    assert reply.usage.prompt_tokens > 0
    single = client.embeddings.create(model="minilm", input="hello", encoding_format="float")
    assert cosine(np.array(single.data[0].embedding), minilm.encode(["hello"]))[0] >= 0.99999
    assert [m.id for m in client.models.list().data] == ["minilm", "faulty"]
    with pytest.raises(openai.BadRequestError, match="input\\[1\\] is empty"):
        client.embeddings.create(model="minilm", input=["fine", ""])
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.embeddings.create(model="gpt-4", input="hello")
    bad = httpx.post(f"{front.url}/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
