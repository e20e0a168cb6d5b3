"""loadtest against a real PyTriton server on loopback (tiny callables, so the test measures the tool, not a model):
closed and open loop, Triton's statistics, the answer check (which must catch wrong answers), rejections by a
full queue, the reports, and the refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
from triton_repo_server import free_port
from typer.testing import CliRunner

from siliconlab.errors import UsageError
from siliconlab.serve.loadtest.client import error_kind
from siliconlab.serve.loadtest.run import LoadPlan, run_plan
from siliconlab.serve.loadtest.target import check_target, looks_like_url, normalise_url

TEXTS = ("a fine film", "the plot was thin", "call me back later", "free prize, text WIN now", "so so")


def vector(text: bytes) -> np.ndarray:
    """A deterministic unit vector per text: what a correct embedding server answers every time."""
    seed = int.from_bytes(hashlib.sha256(text).digest()[:4], "little")
    row = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return row / np.linalg.norm(row)


@pytest.fixture(scope="module")
def server():
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, QueuePolicy, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    libdir = sysconfig.get_config_var("LIBDIR")  # the Python-backend stub links libpython (pyenv keeps it there)
    os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH")]))

    @batch
    def embed(text: np.ndarray) -> dict[str, np.ndarray]:  # texts starting "noise" get a fresh random answer
        rows = [vector(row[0]) if not row[0].startswith(b"noise") else np.random.default_rng().standard_normal(384)
                for row in text]  # fmt: skip
        return {"embedding": np.stack(rows).astype(np.float32)}

    @batch
    def slow(text: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep(0.05)
        return {"embedding": np.stack([vector(row[0]) for row in text])}

    http, grpc = free_port(), free_port()
    config = TritonConfig(http_port=http, grpc_port=grpc, metrics_port=free_port(), http_address="127.0.0.1",
                          grpc_address="127.0.0.1", exit_timeout_secs=1)  # fmt: skip
    inputs = [Tensor(name="text", dtype=bytes, shape=(1,))]
    outputs = [Tensor(name="embedding", dtype=np.float32, shape=(384,))]
    batcher = ModelConfig(max_batch_size=16, batcher=DynamicBatcher(max_queue_delay_microseconds=500))
    tiny_queue = ModelConfig(
        max_batch_size=2, batcher=DynamicBatcher(default_queue_policy=QueuePolicy(max_queue_size=2))
    )
    open_stats = [e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"]  # as `siliconlab serve` does
    triton = Triton(config=config, security_config=TritonSecurityConfig(restricted_endpoints=open_stats))
    triton.bind("minilm", embed, inputs, outputs, config=batcher)
    triton.bind("slow", slow, inputs, outputs, config=tiny_queue)
    triton.run()
    try:
        yield {"http": f"http://127.0.0.1:{http}", "grpc": f"grpc://127.0.0.1:{grpc}"}
    finally:
        triton.stop()


def plan(url: str, **kwargs) -> LoadPlan:
    defaults = dict(protocol="http", model="minilm", texts=TEXTS, concurrency=(1, 4), duration=0.6, check=0.99999)
    return LoadPlan(url=url, **(defaults | kwargs))


def test_closed_loop_sweep_answers_correctly_with_server_statistics(server) -> None:
    for protocol in ("http", "grpc"):
        rows, info = asyncio.run(run_plan(plan(server[protocol], protocol=protocol)))
        assert info["signature"]["checked"] == "embedding"
        assert [r["concurrency"] for r in rows] == [1, 4]
        for row in rows:
            assert row["answered"] == row["sent"] > 5 and not row["errors"], row
            assert row["wrong"] == 0 and row["min_cosine"] > 0.99999 and row["accepted_lost"] == 0
            assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
            assert row["throughput_rps"] == pytest.approx(row["answered"] / row["seconds"], rel=1e-2)
            server_side = row["server"]
            assert server_side["requests"] == row["sent"]  # Triton counted exactly the step's requests
            assert server_side["compute_infer_ms"] > 0 and server_side["queue_ms"] >= 0
            assert server_side["mean_batch"] >= 1


def test_the_check_catches_wrong_answers(server) -> None:
    noise = tuple(f"noise {text}" for text in TEXTS)
    rows, _ = asyncio.run(run_plan(plan(server["http"], texts=noise, concurrency=(2,), duration=0.3)))
    assert rows[0]["wrong"] == rows[0]["answered"] > 0 and rows[0]["min_cosine"] < 0.5


def test_open_loop_past_saturation_rejects_but_loses_and_corrupts_nothing(server) -> None:
    run = plan(server["http"], model="slow", concurrency=(), rates=(300.0,), duration=0.8)
    rows, _ = asyncio.run(run_plan(run))
    row = rows[0]
    assert row["mode"] == "open" and row["rate"] == 300.0
    assert row["errors"].get("rejected", 0) > 0  # a queue of 2 at 300/s against ~40 answers/s must say no
    assert row["answered"] > 0 and row["wrong"] == 0 and row["accepted_lost"] == 0
    assert row["answered"] + row["errors"]["rejected"] == row["sent"]


def test_cli_writes_json_markdown_and_chart(server, tmp_path: Path) -> None:
    from siliconlab.cli import app

    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["loadtest", server["http"], "--concurrency", "1,2", "--duration", "0.4",
                                      "--texts", "20", "--check", "0.99999", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "loadtest.json").read_text())
    assert [r["concurrency"] for r in record["rows"]] == [1, 2]
    assert "same machine" in record["header"]["load_generator"]
    assert "| closed | c=2 |" in (out / "loadtest.md").read_text()
    assert (out / "loadtest.png").read_bytes()[:4] == b"\x89PNG"


def test_refusals_are_one_line_and_need_no_server(tmp_path: Path) -> None:
    from siliconlab.cli import app

    with pytest.raises(UsageError, match="allow-remote"):
        check_target("http://10.1.2.3:8000", allow_remote=False)
    check_target("http://10.1.2.3:8000", allow_remote=True)
    check_target("http://localhost:8000", allow_remote=False)
    assert looks_like_url("127.0.0.1:8000") and not looks_like_url("minilm") and not looks_like_url("./my-model")
    assert normalise_url("127.0.0.1:8001", "grpc") == "grpc://127.0.0.1:8001"
    for args in (["http://example.com:8000"], ["http://127.0.0.1:9", "--concurrency", "0"],
                 ["http://127.0.0.1:9", "--protocol", "smtp"], ["http://127.0.0.1:9", "--check", "2"]):  # fmt: skip
        result = CliRunner().invoke(app, ["loadtest", *args])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    result = CliRunner().invoke(app, ["loadtest", f"http://127.0.0.1:{free_port()}", "--duration", "0.1"])
    assert result.exit_code == 1 and "no Triton server answers" in result.output


def test_error_kinds() -> None:
    from tritonclient.utils import InferenceServerException

    assert error_kind(InferenceServerException("full", status="503")) == "rejected"
    assert error_kind(InferenceServerException("bad", status="400")) == "4xx"
    assert error_kind(InferenceServerException("boom", status="500")) == "5xx"
    assert error_kind(InferenceServerException("q", status="StatusCode.UNAVAILABLE")) == "rejected"
    assert error_kind(InferenceServerException("d", status="StatusCode.DEADLINE_EXCEEDED")) == "timeout"
    assert error_kind(asyncio.TimeoutError()) == "timeout"
    assert error_kind(ConnectionRefusedError()) == "connection"
