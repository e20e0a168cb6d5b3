"""export-triton: every config parses against Triton's model-config schema and is wired consistently; the
Python-backend parts (tokenizer, post-processor) and the ensembles run for real in PyTriton's tritonserver."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from google.protobuf import text_format
from triton_repo_server import python_stand_in, tritonserver
from tritonclient.grpc import model_config_pb2
from typer.testing import CliRunner

from siliconlab.errors import UsageError
from siliconlab.serve.export import export_repository
from siliconlab.serve.export.templates import Batching

BATCHING = Batching(max_batch=8, max_queue_delay_us=500, instances=1)
UNIT = "onnxruntime-cpu-fp32"
ROOT = Path(__file__).resolve().parents[2]


def configs(repo: Path) -> dict[str, model_config_pb2.ModelConfig]:
    """Every model's config.pbtxt parsed with protobuf's text format against Triton's ModelConfig message."""
    parsed = {}
    for folder in sorted(p for p in repo.iterdir() if p.is_dir()):
        config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert config.name == folder.name
        assert (folder / "1").is_dir()
        parsed[config.name] = config
    return parsed


def check_wiring(parsed: dict[str, model_config_pb2.ModelConfig]) -> None:
    """Each ensemble step names a model of the repository, maps only tensors that model has, with the same
    data type on both sides, consumes only tensors already produced, and produces every ensemble output."""
    for config in parsed.values():
        if config.platform != "ensemble":
            continue
        types = {t.name: t.data_type for t in config.input}
        for step in config.ensemble_scheduling.step:
            model = parsed[step.model_name]
            assert config.max_batch_size <= model.max_batch_size
            inputs = {t.name: t.data_type for t in model.input}
            outputs = {t.name: t.data_type for t in model.output}
            assert set(step.input_map) == set(inputs), step.model_name
            for key, value in step.input_map.items():
                assert types[value] == inputs[key], (step.model_name, key)
            for key, value in step.output_map.items():
                types[value] = outputs[key]
        for tensor in config.output:
            assert types[tensor.name] == tensor.data_type


@pytest.fixture(scope="module")
def repos(tiny_bert: Path, tiny_classifier: Path, artifact_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("export")
    emb = export_repository(str(tiny_bert), [UNIT], base / "emb", BATCHING, name="emb", cache=artifact_cache)
    cls = export_repository(  # no length buckets: each request padded to its own longest text
        str(tiny_classifier), [UNIT], base / "cls", BATCHING, name="cls", cache=artifact_cache, buckets=()
    )
    return emb, cls


def test_every_config_parses_against_tritons_schema_and_is_wired(repos) -> None:
    emb, cls = repos
    parsed = configs(emb.repository)
    assert set(parsed) == {"emb", "emb-tokenizer", f"emb-{UNIT}", f"emb-{UNIT}-onnx"}
    onnx = parsed[f"emb-{UNIT}-onnx"]
    assert onnx.backend == "onnxruntime" and onnx.platform == "onnxruntime_onnx"
    assert [(t.name, list(t.dims)) for t in onnx.input] == [("input_ids", [-1]), ("attention_mask", [-1])]
    assert all(t.data_type == model_config_pb2.TYPE_INT64 for t in onnx.input)
    assert [(t.name, list(t.dims)) for t in onnx.output] == [("sentence_embedding", [64])]
    assert onnx.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert onnx.dynamic_batching.max_queue_delay_microseconds == 500 and onnx.max_batch_size == 8
    assert (emb.repository / f"emb-{UNIT}-onnx" / "1" / "model.onnx").stat().st_size > 0
    assert (emb.repository / "emb-tokenizer" / "1" / "tokenizer" / "tokenizer.json").is_file()
    check_wiring(parsed)
    parsed = configs(cls.repository)
    post = parsed["cls-postprocess"]
    assert post.backend == "python" and [list(t.dims) for t in post.output] == [[1], [1], [3]]
    assert [t.name for t in parsed["cls"].output] == ["label", "score", "scores"]
    check_wiring(parsed)


def test_non_onnx_units_and_a_non_empty_folder_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    from siliconlab.cli import app

    result = CliRunner().invoke(app, ["export-triton", str(tiny_bert), "--units", "openvino-cpu-fp32",
                                      "--out", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2
    assert "only ONNX units" in result.output and "onnxruntime-cpu-int8" in result.output
    assert "Traceback" not in result.output
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "mine.txt").write_text("keep")
    with pytest.raises(UsageError, match="not empty"):
        export_repository(str(tiny_bert), [UNIT], tmp_path / "r", BATCHING)
    assert (tmp_path / "r" / "mine.txt").read_text() == "keep"


def test_overwrite_replaces_only_after_success(repos, tiny_bert: Path, artifact_cache: Path, tmp_path: Path) -> None:
    target = tmp_path / "r"
    shutil.copytree(repos[0].repository, target)
    (target / "stale").mkdir()
    export_repository(str(tiny_bert), [UNIT], target, BATCHING, overwrite=True, name="emb", cache=artifact_cache)
    assert not (target / "stale").exists() and (target / "emb" / "config.pbtxt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_deploy_manifests_parse_and_name_the_repository() -> None:
    manifests = [p for folder in ("k8s", "kserve") for p in (ROOT / "deploy" / folder).rglob("*.yaml")]
    assert manifests
    for path in manifests:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert documents, path
        assert all({"apiVersion", "kind", "metadata"} <= set(d) for d in documents), path
    kinds = {d["kind"] for p in manifests for d in yaml.safe_load_all(p.read_text()) if d}
    assert {"InferenceService", "ServingRuntime", "Deployment", "Service"} <= kinds


def test_python_parts_and_ensembles_answer_in_the_embedded_tritonserver(
    repos, tiny_bert: Path, tiny_classifier: Path, artifact_cache: Path, tmp_path: Path
) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    import siliconlab
    from siliconlab.text import encode

    repo = tmp_path / "repo"
    for result in repos:
        shutil.copytree(result.repository, repo, dirs_exist_ok=True)
    for onnx_model in repo.glob("*-onnx"):
        python_stand_in(onnx_model)
    texts = ["A fine film.", "The plot was thin, the acting wooden, and the ending arrived far too late to help."]
    embedder = siliconlab.load(str(tiny_bert), unit=UNIT, cache=artifact_cache)
    classifier = siliconlab.load(str(tiny_classifier), unit=UNIT, cache=artifact_cache)
    with tritonserver(repo, tmp_path) as url:
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))

        def infer(model: str, items: list, outputs: list[str]) -> dict[str, np.ndarray]:
            data = httpclient.InferInput("text", [len(items), 1], "BYTES")
            data.set_data_from_numpy(np.array([[t] for t in items], dtype=np.object_))
            answer = client.infer(model, [data], outputs=[httpclient.InferRequestedOutput(n) for n in outputs])
            return {n: answer.as_numpy(n) for n in outputs}

        tokens = infer("emb-tokenizer", texts, ["input_ids", "attention_mask"])
        ids, mask = encode(embedder.loaded.tokenizer, texts, embedder.loaded.max_length)
        assert tokens["input_ids"].shape[1] == 32  # the longest text's 20-odd tokens, padded to the 32 bucket
        np.testing.assert_array_equal(tokens["input_ids"][:, : ids.shape[1]], ids)
        np.testing.assert_array_equal(tokens["attention_mask"][:, : ids.shape[1]], mask)
        assert not tokens["attention_mask"][:, ids.shape[1] :].any()
        exact = infer("cls-tokenizer", texts, ["input_ids"])["input_ids"]
        np.testing.assert_array_equal(
            exact, encode(classifier.loaded.tokenizer, texts, classifier.loaded.max_length)[0]
        )

        served = infer("emb", texts, ["embedding"])["embedding"]
        local = embedder.encode(texts)
        cosine = (served * local).sum(axis=1) / np.linalg.norm(served, axis=1) / np.linalg.norm(local, axis=1)
        assert cosine.min() >= 0.99999

        answers = infer(f"cls-{UNIT}", texts, ["label", "score", "scores"])
        expected = classifier.classify(texts)
        assert [row[0].decode() for row in answers["label"]] == [e["label"] for e in expected]
        np.testing.assert_allclose(answers["scores"], [list(e["scores"].values()) for e in expected], atol=1e-5)

        for bad, why in (["   "], "empty text"), ([b"\xff\xfe"], "not valid UTF-8"):
            with pytest.raises(InferenceServerException, match=why):
                infer("emb", bad, ["embedding"])
        assert infer("emb", texts[:1], ["embedding"])["embedding"].shape == (1, 64)  # still answering


def test_gpu_and_tensorrt_configs_parse() -> None:
    from siliconlab.serve.export.templates import Tensor, onnx_config

    ids = [Tensor("input_ids", "TYPE_INT64", (-1,)), Tensor("attention_mask", "TYPE_INT64", (-1,))]
    text = onnx_config(
        "m-gpu", ids, [Tensor("logits", "TYPE_FP32", (2,))], BATCHING, gpu=True, threads=4, tensorrt=True
    )
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert not config.parameters  # ORT's CPU thread settings only for CPU instances
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
