"""The front's conventions (issue 27): OpenAI's `dimensions` through the `openai` client, and TEI's routes
(`/embed`, `/predict`, `/tokenize`, `/info`) called with plain HTTP in TEI's documented shapes. One keyed server
for the module (minilm + sentiment on fp32 ONNX Runtime); answers checked against the pipelines called directly."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import pytest
from serve_helpers import UNIT, cosine

from siliconlab.serve.config import ServeOptions, free_port
from siliconlab.serve.models import bindings_for
from siliconlab.serve.server import Server

KEY = "tei-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["I loved this film, the acting was superb.", "Worst purchase ever.", "The cat sat on the mat."]
MAX_BYTES = 200_000


def head(vectors: np.ndarray, n: int) -> np.ndarray:
    """What OpenAI's `dimensions` means: the first n components, renormalised."""
    part = vectors[:, :n]
    return part / np.linalg.norm(part, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def front(minilm: Any, sentiment: Any) -> Any:
    from siliconlab.serve.openai_front import Front

    options = ServeOptions(models=("minilm", "sentiment"), unit=UNIT, http_port=free_port(), grpc_port=free_port(),
                           metrics_port=free_port(), max_batch=8, api_keys=(KEY,),
                           max_request_bytes=MAX_BYTES).check()  # fmt: skip
    bindings = [*bindings_for("minilm", minilm), *bindings_for("sentiment", sentiment)]
    server = Server(options, bindings)
    server.start()
    front = Front(server, bindings, "127.0.0.1", free_port())
    try:
        front.start()
        yield front
    finally:
        front.stop()
        server.stop()


@pytest.fixture
def tei(front: Any) -> Any:
    with httpx.Client(base_url=front.url, headers=AUTH, timeout=60) as client:
        yield client


def refused(response: httpx.Response, status: int, kind: str, words: str) -> None:
    """A TEI-shaped error: the status, `{"error": ..., "error_type": ...}`, and a message that says why."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == kind
    assert words in body["error"], body["error"]


def test_openai_dimensions_are_the_first_n_renormalised(front: Any, minilm: Any) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{front.url}/v1", api_key=KEY, max_retries=0)
    full = minilm.encode(TEXTS)
    for n in (384, 256, 64, 1):
        reply = client.embeddings.create(model="minilm", input=TEXTS, dimensions=n, encoding_format="float")
        got = np.array([d.embedding for d in reply.data], dtype=np.float32)
        assert got.shape == (3, n)
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert cosine(got, head(full, n)).min() >= 0.99999
    packed = client.embeddings.create(model="minilm", input=TEXTS, dimensions=128, encoding_format="base64")
    raw = np.array([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in packed.data])
    assert raw.shape == (3, 128) and cosine(raw, head(full, 128)).min() >= 0.99999
    default = client.embeddings.create(model="minilm", input=TEXTS[0], dimensions=32)  # the client's base64 default
    assert len(default.data[0].embedding) == 32
    for bad in (0, 385, -3):
        with pytest.raises(openai.BadRequestError, match="'dimensions' must be 1 to 384") as caught:
            client.embeddings.create(model="minilm", input="hello", dimensions=bad)
        assert caught.value.body["param"] == "dimensions"
    for bad in (True, "64", 1.5):  # a JSON boolean or string is no size (it was read as 1 and 64)
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="minilm", input="hello", dimensions=bad)  # type: ignore[arg-type]


def test_embed_answers_teis_shape(tei: httpx.Client, minilm: Any) -> None:
    one = tei.post("/embed", json={"inputs": TEXTS[0]})
    assert one.status_code == 200 and len(one.json()) == 1 and len(one.json()[0]) == 384
    assert cosine(np.array(one.json()), minilm.encode(TEXTS[:1]))[0] >= 0.99999
    many = tei.post("/embed", json={"inputs": TEXTS, "normalize": True, "truncate": False}).json()
    assert cosine(np.array(many), minilm.encode(TEXTS)).min() >= 0.99999
    short = np.array(tei.post("/embed", json={"inputs": TEXTS, "dimensions": 64}).json())
    assert short.shape == (3, 64) and cosine(short, head(minilm.encode(TEXTS), 64)).min() >= 0.99999


def test_embed_refuses_what_it_cannot_answer(tei: httpx.Client) -> None:
    refused(tei.post("/embed", json={"inputs": "hi", "normalize": False}), 400, "Validation", "normalize")
    refused(tei.post("/embed", json={"inputs": "hi", "dimensions": 385}), 400, "Validation", "1 to 384")
    refused(tei.post("/embed", json={"inputs": []}), 400, "Empty", "cannot be empty")
    refused(tei.post("/embed", json={"inputs": ["fine", "  "]}), 400, "Empty", "inputs[1]")
    refused(tei.post("/embed", json={"inputs": 42}), 422, "Validation", "inputs")
    refused(tei.post("/embed", json={"inputs": "hi", "prompt_name": "query"}), 400, "Validation", "no prompts")
    refused(tei.post("/embed", content=b"{not json"), 400, "Validation", "not valid JSON")


def test_a_text_over_the_window_is_413_unless_truncate(tei: httpx.Client, minilm: Any) -> None:
    long = "a rather long sentence about nothing in particular. " * 100  # ~1,000 tokens, over the 512-token window
    refused(tei.post("/embed", json={"inputs": ["short", long]}), 413, "Validation", "input 1 is longer")
    cut = tei.post("/embed", json={"inputs": long, "truncate": True})
    assert cut.status_code == 200 and cosine(np.array(cut.json()), minilm.encode([long]))[0] >= 0.99999
    left = tei.post("/embed", json={"inputs": long, "truncate": True, "truncation_direction": "Left"})
    refused(left, 400, "Validation", "Left")


def test_predict_answers_every_label_highest_first(tei: httpx.Client, sentiment: Any) -> None:
    expected = sentiment.classify(TEXTS[:2])
    one = tei.post("/predict", json={"inputs": TEXTS[0]}).json()
    assert [p["label"] for p in one] == ["positive", "negative"]
    assert one[0]["score"] == pytest.approx(expected[0]["scores"]["positive"], abs=1e-4)
    assert one[0]["score"] >= one[1]["score"] and sum(p["score"] for p in one) == pytest.approx(1.0, abs=1e-4)
    listed = tei.post("/predict", json={"inputs": [TEXTS[0]]}).json()  # [text] is one input, not a batch
    assert [p["label"] for p in listed] == ["positive", "negative"]
    assert [p["score"] for p in listed] == pytest.approx([p["score"] for p in one], abs=1e-5)
    batch = tei.post("/predict", json={"inputs": [[TEXTS[0]], [TEXTS[1]]]}).json()
    assert [b[0]["label"] for b in batch] == [e["label"] for e in expected] == ["positive", "negative"]
    refused(tei.post("/predict", json={"inputs": TEXTS[:2]}), 400, "Validation", "pair")
    refused(tei.post("/predict", json={"inputs": TEXTS}), 422, "Validation", "batch")
    refused(tei.post("/predict", json={"inputs": "hi", "raw_scores": True}), 400, "Validation", "raw_scores")


def test_tokenize_answers_ids_texts_and_byte_offsets(tei: httpx.Client, minilm: Any) -> None:
    text = "Café au lait"  # é is two bytes: TEI's offsets count UTF-8 bytes
    tokens = tei.post("/tokenize", json={"inputs": text}).json()
    assert len(tokens) == 1
    ids = minilm.loaded.tokenizer(text)["input_ids"]
    assert [t["id"] for t in tokens[0]] == ids
    first, last = tokens[0][0], tokens[0][-1]
    assert first == {"id": ids[0], "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert last["special"] and last["text"] == "[SEP]"
    words = [t for t in tokens[0] if not t["special"]]
    assert words[0]["text"] == "Café" and (words[0]["start"], words[0]["stop"]) == (0, 5)
    encoded = text.encode()
    assert all(encoded[t["start"] : t["stop"]].decode() == t["text"] for t in words)
    bare = tei.post("/tokenize", json={"inputs": [text, "hello"], "add_special_tokens": False}).json()
    assert len(bare) == 2 and not any(t["special"] for row in bare for t in row)
    assert [t["text"] for t in bare[1]] == ["hello"]


def test_info_describes_the_embedding_model(tei: httpx.Client, minilm: Any) -> None:
    info = tei.get("/info").json()
    assert info["model_id"] == "minilm" and info["model_type"] == {"embedding": {"pooling": "mean"}}
    assert info["model_dtype"] == "float32" and info["max_input_length"] == minilm.loaded.max_length
    assert info["max_client_batch_size"] == 2048 and info["max_batch_requests"] == 8
    assert info["siliconlab"]["unit"] == UNIT and isinstance(info["version"], str)


def test_tei_routes_need_the_key_and_bound_the_body(front: Any) -> None:
    for path in ("/embed", "/predict", "/tokenize"):
        refused(httpx.post(f"{front.url}{path}", json={"inputs": "hi"}), 401, "Unauthorized", "API key")
    refused(httpx.get(f"{front.url}/info"), 401, "Unauthorized", "API key")
    wrong = {"Authorization": "Bearer not-the-key-not-the-key"}
    refused(httpx.post(f"{front.url}/embed", json={"inputs": "hi"}, headers=wrong), 401, "Unauthorized", "API key")
    huge = httpx.post(f"{front.url}/embed", json={"inputs": "x" * MAX_BYTES}, headers=AUTH)
    refused(huge, 413, "Validation", "--max-request-bytes")
