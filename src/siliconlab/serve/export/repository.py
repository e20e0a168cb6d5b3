"""Build a Triton model repository from siliconlab's own parity-gated ONNX artifacts.

Layout for model `minilm` and unit `onnxruntime-cpu-int8` (every name derived from the model's name):

    REPO/minilm-tokenizer/               Python backend: text -> input_ids, attention_mask (length buckets)
    REPO/minilm-onnxruntime-cpu-int8-onnx/  onnxruntime backend: the unit's model.onnx, dynamic batching
    REPO/minilm-postprocess/             Python backend, classifiers only: logits -> label, score, scores
    REPO/minilm-onnxruntime-cpu-int8/    ensemble: text in, the task's answer out
    REPO/minilm/                         ensemble for the first unit named: the same interface as `siliconlab serve`

The repository is built in a temporary sibling folder and moved into place only when complete, so a failed
export never leaves half a repository, and `--overwrite` replaces the old one only on success.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from siliconlab.errors import SiliconlabError, UsageError
from siliconlab.serve.export import templates
from siliconlab.serve.export.templates import Batching, Step, Tensor

#: Where each Python-backend model's code lives in this package.
BACKEND_DIR = Path(__file__).parent / "python_backend"
#: Sequence lengths the tokenizer pads a request up to (capped at the model's maximum): Triton batches only
#: requests of equal shape, so a few buckets let similar texts share a batch at bounded padding cost.
LENGTH_BUCKETS = (16, 32, 64, 128, 256, 512)
#: Name prefixes of the tokenizer's files in an artifact folder (save_pretrained writes them beside the graph).
TOKENIZER_FILES = ("tokenizer", "vocab", "merges")


@dataclass
class ExportedModel:
    name: str
    kind: str  # tokenizer | onnx | postprocess | ensemble
    backend: str
    unit: str = ""


@dataclass
class ExportResult:
    repository: Path
    model: str
    task: str
    models: list[ExportedModel] = field(default_factory=list)

    def names(self) -> list[str]:
        return [m.name for m in self.models]


def exportable_units() -> list[str]:
    """Units whose artifact is an ONNX graph Triton's onnxruntime backend runs (CPU or GPU instances)."""
    from siliconlab.units import REGISTRY

    return [name for name, unit in REGISTRY.items() if unit.engine == "onnxruntime"]


def check_units(names: list[str]) -> list[Any]:
    """The Unit objects for `names`, refusing unknown and non-ONNX units in one line before any work."""
    from siliconlab.units import get_unit

    if not names:
        raise UsageError(f"--units is empty: name one or more of {', '.join(exportable_units())}")
    units = [get_unit(name) for name in names]
    wrong = [u.name for u in units if u.engine != "onnxruntime"]
    if wrong:
        raise UsageError(
            f"cannot export {', '.join(wrong)} to Triton: only ONNX units run on its onnxruntime backend "
            f"({', '.join(exportable_units())})"
        )
    if len(set(names)) != len(names):
        raise UsageError(f"--units names a unit twice: {','.join(names)}")
    return units


def check_target(out: Path, overwrite: bool) -> None:
    """A non-empty folder is someone's work: refuse it unless told to replace it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out {out} exists and is not empty: choose another folder or pass --overwrite")


def triton_name(name: str) -> str:
    """A model name Triton and URLs accept: letters, digits, '-', '_' and '.'."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    if not cleaned:
        raise UsageError(f"cannot make a Triton model name from '{name}': pass --name")
    return cleaned


def onnx_signature(path: Path) -> tuple[list[Tensor], list[Tensor]]:
    """Inputs and outputs of the graph itself (names, types, dims without batch), so the config matches it."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def tensor(value: Any) -> Tensor:
        kind = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim][1:]
        if kind.elem_type not in templates.ONNX_TO_TRITON:
            raise SiliconlabError(f"{path.name}: tensor {value.name} has ONNX type {kind.elem_type}, not exportable")
        return Tensor(value.name, templates.ONNX_TO_TRITON[kind.elem_type], tuple(dims))

    return [tensor(v) for v in graph.input], [tensor(v) for v in graph.output]


def _graph_file(artifact_dir: Path) -> Path:
    graphs = sorted(artifact_dir.glob("*.onnx"))
    if len(graphs) != 1:
        raise SiliconlabError(f"expected one .onnx file in {artifact_dir}, found {len(graphs)}")
    return graphs[0]


def _write(folder: Path, config: str) -> None:
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config)


def _onnx_model(repo: Path, name: str, unit: Any, artifact_dir: Path, batching: Batching, output: str) -> Tensor:
    """Copy the unit's graph (and any external-data files beside it); return the output the ensemble uses."""
    graph = _graph_file(artifact_dir)
    inputs, outputs = onnx_signature(graph)
    if {t.name for t in inputs} != {"input_ids", "attention_mask"}:
        raise SiliconlabError(f"{graph}: inputs {[t.name for t in inputs]}, expected input_ids and attention_mask")
    chosen = next((t for t in outputs if t.name == output), None)
    if chosen is None:
        raise SiliconlabError(f"{graph}: no output '{output}' (has {', '.join(t.name for t in outputs)})")
    folder = repo / name
    gpu = unit.device == "cuda"
    threads = None if gpu else _cpu_threads()
    tensorrt = "tensorrt" in unit.name
    _write(folder, templates.onnx_config(name, inputs, [chosen], batching, gpu, threads, tensorrt))
    shutil.copy2(graph, folder / "1" / "model.onnx")
    for extra in artifact_dir.iterdir():  # external data keeps its name: the graph refers to it by that name
        if extra.is_file() and extra != graph and (extra.suffix in (".data", ".bin") or ".onnx" in extra.name):
            shutil.copy2(extra, folder / "1" / extra.name)
    return chosen


def _cpu_threads() -> int:
    from siliconlab.bench.machine import default_threads

    return default_threads()


def _tokenizer_model(
    repo: Path, name: str, artifact_dir: Path, batching: Batching, max_length: int, buckets: tuple[int, ...]
) -> None:
    from transformers import AutoTokenizer

    if not (artifact_dir / "tokenizer.json").is_file():
        raise SiliconlabError(f"{artifact_dir} has no tokenizer.json (a fast tokenizer is needed for Triton)")
    pad_id = AutoTokenizer.from_pretrained(artifact_dir, trust_remote_code=False).pad_token_id
    if pad_id is None:
        raise SiliconlabError(f"the tokenizer in {artifact_dir} has no padding token")
    folder = repo / name
    sizes = sorted({min(b, max_length) for b in buckets} | {max_length}) if buckets else []
    params = {"max_length": str(max_length), "pad_id": str(pad_id), "length_buckets": ",".join(map(str, sizes))}
    text = [Tensor("text", "TYPE_STRING", (1,))]
    ids = [Tensor("input_ids", "TYPE_INT64", (-1,)), Tensor("attention_mask", "TYPE_INT64", (-1,))]
    _write(folder, templates.python_config(name, text, ids, batching, params))
    shutil.copy2(BACKEND_DIR / "tokenizer.py", folder / "1" / "model.py")
    (folder / "1" / "tokenizer").mkdir()
    for path in artifact_dir.iterdir():
        if path.is_file() and (path.name.startswith(TOKENIZER_FILES) or path.name == "special_tokens_map.json"):
            shutil.copy2(path, folder / "1" / "tokenizer" / path.name)


def _postprocess_model(repo: Path, name: str, logits: Tensor, labels: list[str], batching: Batching) -> list[Tensor]:
    outputs = [
        Tensor("label", "TYPE_STRING", (1,)),
        Tensor("score", "TYPE_FP32", (1,)),
        Tensor("scores", "TYPE_FP32", (len(labels),)),
    ]
    params = {"labels": json.dumps(labels)}
    _write(repo / name, templates.python_config(name, [logits], outputs, batching, params))
    shutil.copy2(BACKEND_DIR / "postprocess.py", repo / name / "1" / "model.py")
    return outputs


def export_repository(
    model: str,
    units: list[str],
    out: Path,
    batching: Batching,
    overwrite: bool = False,
    name: str | None = None,
    cache: Path | None = None,
    threads: int | None = None,
    buckets: tuple[int, ...] = LENGTH_BUCKETS,
) -> ExportResult:
    """Convert-or-reuse each unit's artifact (parity-gated), then write the repository; see the module doc."""
    from siliconlab.models import resolve

    chosen = check_units(units)
    out = Path(out)
    check_target(out, overwrite)
    source = resolve(model)
    base = triton_name(name or source.name)
    artifacts = [_artifact(source, unit, cache, threads) for unit in chosen]
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        result = _build(work, source, base, chosen, artifacts, batching, buckets)
        if out.exists():
            shutil.rmtree(out)
        work.chmod(0o755)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    result.repository = out
    return result


def _artifact(source: Any, unit: Any, cache: Path | None, threads: int | None) -> Path:
    from siliconlab.bench.machine import default_threads
    from siliconlab.convert.pipeline import Converter
    from siliconlab.paths import default_cache

    converter = Converter(source, Path(cache) if cache else default_cache(), threads or default_threads())
    outcome = converter.convert_unit(unit)
    if not outcome.ok or outcome.artifact_dir is None:
        raise SiliconlabError(f"no {unit.name} artifact for {source.name}: {outcome.error or outcome.status}")
    return outcome.artifact_dir


def _build(
    repo: Path,
    source: Any,
    base: str,
    units: list[Any],
    artifacts: list[Path],
    batching: Batching,
    buckets: tuple[int, ...],
) -> ExportResult:
    from transformers import AutoTokenizer

    from siliconlab.models.base import head_for_outputs, labels_of, max_length_of

    manifest = json.loads((artifacts[0] / "manifest.json").read_text())
    head = head_for_outputs(manifest.get("outputs", []))
    result = ExportResult(repo, base, head.name)
    max_length = max_length_of(source.config, AutoTokenizer.from_pretrained(artifacts[0], trust_remote_code=False))
    tokenizer = f"{base}-tokenizer"
    _tokenizer_model(repo, tokenizer, artifacts[0], batching, max_length, buckets)
    result.models.append(ExportedModel(tokenizer, "tokenizer", "python"))
    labels = labels_of(source.config) if head.classifier else []
    raw_output = head.answer
    post = f"{base}-postprocess"
    text_in = [Tensor("text", "TYPE_STRING", (1,))]
    token_map = {"input_ids": "input_ids", "attention_mask": "attention_mask"}
    for index, (unit, artifact) in enumerate(zip(units, artifacts)):
        onnx_name = f"{base}-{unit.name}-onnx"
        graph_out = _onnx_model(repo, onnx_name, unit, artifact, batching, raw_output)
        result.models.append(ExportedModel(onnx_name, "onnx", "onnxruntime", unit.name))
        steps = [Step(tokenizer, {"text": "text"}, token_map)]
        if head.classifier:
            if graph_out.dims != (len(labels),):
                raise SiliconlabError(f"{unit.name}: logits {graph_out.dims} do not match {len(labels)} labels")
            if index == 0:
                answer = _postprocess_model(repo, post, graph_out, labels, batching)
                result.models.append(ExportedModel(post, "postprocess", "python"))
            steps.append(Step(onnx_name, token_map, {"logits": "logits"}))
            steps.append(Step(post, {"logits": "logits"}, {n: n for n in ("label", "score", "scores")}))
        else:
            answer = [Tensor("embedding", graph_out.data_type, graph_out.dims)]
            steps.append(Step(onnx_name, token_map, {raw_output: "embedding"}))
        names = [f"{base}-{unit.name}"] + ([base] if index == 0 else [])
        for ensemble in names:
            config = templates.ensemble_config(ensemble, text_in, answer, batching.max_batch, steps)
            _write(repo / ensemble, config)
            result.models.append(ExportedModel(ensemble, "ensemble", "ensemble", unit.name))
    _write_readme(repo, result)
    return result


def _write_readme(repo: Path, result: ExportResult) -> None:
    """What is in the folder and how to serve it, for whoever finds the folder without this tool."""
    lines = [
        f"# Triton model repository: {result.model} ({result.task})",
        "",
        "Generated by `siliconlab export-triton`.",
        "",
    ]
    lines += [f"- `{m.name}`: {m.kind} ({m.backend}{', ' + m.unit if m.unit else ''})" for m in result.models]
    lines += [
        "",
        "Serve with the official container (the tokenizer step needs `pip install tokenizers` in it):",
        "",
        "    docker run --rm -p8000:8000 -p8001:8001 -p8002:8002 -v $PWD:/models \\",
        "      nvcr.io/nvidia/tritonserver:24.10-py3 \\",
        '      bash -c "pip install tokenizers && tritonserver --model-repository=/models"',
        "",
    ]
    (repo / "README.md").write_text("\n".join(lines))
