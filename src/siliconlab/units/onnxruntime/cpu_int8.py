"""onnxruntime-cpu-int8: SmoothQuant + dynamic int8 (per-channel weights; 7-bit only on x86 without VNNI) on the
fused ORT graph, keeping the few most outlier-sensitive FFN down-projections in fp32 when calibration says it is
needed; a classifier also re-answers its near-ties in fp32 (fallback.py).

Measured on MiniLM (docs/units.md): stock dynamic int8 reaches pooled cosine 0.92 worst-case; per-channel
0.975; SmoothQuant α=0.7 with reduce_range ~0.987; plus layer 0's FFN down-projection in fp32 ≥ 0.99 —
at ~1.5x the fp32 speed. reduce_range matters on AVX2 CPUs without VNNI, where u8×s8 products accumulate
through saturating int16 (vpmaddubsw). The fp32 exclusions are chosen on calibration text (never on the
parity sentences) and recorded in the manifest: greedily, among FFN down-projections and the embedding
lookup, first fit — the lookup first, being free in time (a gather has no int8 arithmetic to speed up; only
its table grows 4x), then the down-projections by their calibration input outliers, largest first; the
first that reaches the target is kept (before issue 25 every candidate was scored each round: 8 trial graphs
on sentiment where 3 now reach the same choice). On AMD Zen 5 (AVX-512 VNNI) 8-bit weights raised SmoothQuant's
calibration cosine on sentiment from 0.9871 to 0.9903, and one fp32 node sufficed instead of two.

Speed at 19 tokens is per-node overhead as much as GEMM: SmoothQuant's 1/s folds into the attention node's
value weights for the output projection (no Mul there), and MatMuls kept in fp32 carry no smoothing Mul.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.units.base import INT8_COSINE_MIN, Conversion, Unit
from siliconlab.units.onnxruntime.cpu import ARTIFACT, OrtRunner, export_fused, ort_versions
from siliconlab.units.onnxruntime.fallback import FALLBACK, FALLBACK_MARGIN, FallbackRunner, choose_margin
from siliconlab.units.onnxruntime.head import HeadSite, correct_bias, expose_input, find_head, hide_input, mean_logits

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from siliconlab.models.base import LoadedModel

SMOOTH_ALPHA = 0.7
CALIBRATION_TEXTS = 64
#: Calibration must clear the parity gate with margin before we stop keeping nodes in fp32.
CALIBRATION_TARGET = 0.993
MAX_FP32_NODES = 3
#: Texts whose mean logit shift corrects a classifier head's bias (head.py).
CORRECTION_TEXTS = 128


#: CPU flags with a non-saturating u8×s8 dot product (VPDPBUSD): 8-bit weights are safe there.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


WEIGHT_RANGES = {True: "7-bit weights (reduce_range: x86 without VNNI)", False: "8-bit weights (VNNI, or not x86)"}


def reduce_range(flags: Collection[str] | None = None, machine: str | None = None) -> bool:
    """7-bit weights only on x86 without int8 dot products (VNNI / AMX), where ORT's u8×s8 kernels add products
    through saturating int16 (vpmaddubsw); with VNNI (this project's AMD Zen 5) or off x86, full 8-bit weights
    lose nothing to saturation. The CPU's flags come from cpu_features (what every CPU recipe decides on)."""
    from siliconlab.cpu_features import CpuFeatures, detect

    cpu = detect() if flags is None else CpuFeatures(machine or detect().arch, frozenset(flags))
    if cpu.arch.lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    return not cpu.has(*VNNI_FLAGS)


def _quantize(src: Path, dst: Path, exclude: list[str]) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range(),
            nodes_to_exclude=exclude,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _feed(model: LoadedModel, text: str) -> dict[str, np.ndarray]:
    from siliconlab.text import encode

    ids, mask = encode(model.tokenizer, [text], model.max_length, warn=False)
    return {"input_ids": ids, "attention_mask": mask}


def _correction_texts(model_name: str, calibration: list[str]) -> list[str]:
    """The task's own training texts for a built-in task model; the calibration texts for any other."""
    from siliconlab.data.tasks import TASKS, correction_texts

    return correction_texts(model_name, CORRECTION_TEXTS) if model_name in TASKS else calibration


def _finish_head(path: Path, head: HeadSite, feeds: list[dict[str, np.ndarray]], fp32_logits: np.ndarray) -> dict:
    """Bias-correct the quantized head, drop the calibration output, and say what was done."""
    import onnx

    shift = fp32_logits - mean_logits(OrtRunner(path, 2), feeds)
    graph = onnx.load(str(path))
    correct_bias(graph, head, shift)
    hide_input(graph, head)
    onnx.save(graph, str(path))
    return {"fp32_node": head.matmul, "bias_correction": [round(float(v), 6) for v in shift],
            "correction_texts": len(feeds)}  # fmt: skip


def _fallback_margin(quantized: Path, fp32: np.ndarray, feeds: list[dict[str, np.ndarray]]) -> dict:
    """Calibrate the fp32 re-check of near-ties (fallback.py) on the task's training texts, run one at a time;
    `fp32` holds the fp32 graph's logits for the same texts, measured once before quantizing."""
    import numpy as np

    runner = OrtRunner(quantized, 2)
    return choose_margin(np.stack([runner.run(f["input_ids"], f["attention_mask"])["logits"][0] for f in feeds]), fp32)


def _one_at_a_time(runner: OrtRunner, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Logits per text, each run alone (as users send them; no padding neighbours)."""
    import numpy as np

    return np.stack([runner.run(f["input_ids"], f["attention_mask"])["logits"][0] for f in feeds])


def _pooled(runner: OrtRunner, feeds: list[dict[str, np.ndarray]], batch: dict[str, np.ndarray]) -> np.ndarray:
    import numpy as np

    single = [runner.run(f["input_ids"], f["attention_mask"])[runner.output_names[-1]][0] for f in feeds]
    batched = runner.run(batch["input_ids"], batch["attention_mask"])[runner.output_names[-1]]
    return np.concatenate([np.stack(single), batched])


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    import numpy as np

    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    return float(cos.min())


def _ffn_down_projections(graph: onnx.ModelProto) -> list[str]:
    """MatMuls fed by the FFN's GELU: the sites of BERT's activation outliers (Bondarenko et al., 2021)."""
    producers = {out: node for node in graph.graph.node for out in node.output}
    names = []
    for node in graph.graph.node:
        if node.op_type != "MatMul":
            continue
        source = producers.get(node.input[0])
        while source is not None and source.op_type == "Mul" and source.name.endswith("_smooth_inv_Mul"):
            source = producers.get(source.input[0])
        if source is not None and "Gelu" in source.op_type:
            names.append(node.name)
    return names


def _by_outliers(candidates: list[str], graph: onnx.ModelProto, maxima: dict[str, np.ndarray]) -> list[str]:
    """The candidate MatMuls, largest input activation first (max |x| over channels, measured on calibration
    text before smoothing): outliers are what int8 loses, so the likeliest fix is tried first. Why: trying
    every candidate each round took most of a first `classify sentiment` (issue 25)."""
    inputs = {node.name: node.input[0] for node in graph.graph.node}

    def peak(name: str) -> float:
        values = maxima.get(inputs.get(name, ""))
        return float(values.max()) if values is not None else 0.0

    return sorted(candidates, key=peak, reverse=True)


class OnnxRuntimeCpuInt8(Unit):
    name = "onnxruntime-cpu-int8"
    engine = "onnxruntime"
    device = "cpu"
    precision = "int8"
    cosine_min = INT8_COSINE_MIN

    @property
    def recipe(self) -> str:  # type: ignore[override]
        """Names the weight range too: an artifact built for another instruction set is rebuilt, not reused."""
        weights = "rr" if reduce_range() else "w8"
        return (
            f"plain-or-smoothquant-a{SMOOTH_ALPHA}-vfold-dynamic-perchannel-{weights}-firstfit{CALIBRATION_TARGET}"
            "-emb-noskipln-pruned-headfp32-biascorr-fp32recheck"
        )

    requires = ("onnx", "onnxruntime")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        from siliconlab.progress import advance, stage

        with stage(f"{model.name} {self.name}: export + fuse ONNX"):
            fused_path, fused = export_fused(model, out_dir)
        with stage(f"{model.name} {self.name}: calibrate int8 (trials)", unit_name="trials"):
            return self._calibrate(model, out_dir, fused_path, fused, advance)

    def _calibrate(self, model: LoadedModel, out_dir: Path, fused_path: Path, fused: Any, advance: Any) -> Conversion:
        """Quantize the fused graph, searching on calibration text for the cheapest accurate recipe (one
        `advance` per trial graph measured)."""
        import onnx

        from siliconlab.data import calibration_texts
        from siliconlab.text import encode
        from siliconlab.units.onnxruntime.smoothquant import activation_channel_max, smooth

        graph = onnx.load(str(fused_path))
        head = find_head(graph)
        fixed = head.exclude if head else []  # a classifier's head stays fp32 (module docstring of head.py)
        if head:
            onnx.save(graph, str(out_dir / FALLBACK))  # the fp32 graph that re-answers near-ties (fallback.py)
            expose_input(graph, head)
            onnx.save(graph, str(fused_path))
        texts = calibration_texts(CALIBRATION_TEXTS)
        feeds = [_feed(model, text) for text in texts]
        ids, mask = encode(model.tokenizer, texts[:16], model.max_length, warn=False)
        batch = {"input_ids": ids, "attention_mask": mask}
        reference = _pooled(OrtRunner(fused_path, 2), feeds, batch)
        correction_feeds = [_feed(model, text) for text in _correction_texts(model.name, texts)] if head else []
        # The fp32 graph's logits per correction text, once: their mean for the bias correction, each row for the
        # near-tie margin (measured twice before issue 25's first-run work, ~7 s of a first `classify`).
        fp32_rows = _one_at_a_time(OrtRunner(fused_path, 2), correction_feeds) if head else None

        def trial(source: Path, exclude: list[str]) -> float:
            _quantize(source, fused_path.with_suffix(".trial.onnx"), exclude + fixed)
            advance()
            return _min_cosine(_pooled(OrtRunner(fused_path.with_suffix(".trial.onnx"), 2), feeds, batch), reference)

        # Cheapest graph first: plain per-channel int8; then SmoothQuant (one Mul per MatMul, where it does not
        # fold into the producer); then, greedily, the most sensitive FFN down-projections or the embedding
        # lookup in fp32.
        plain_path = out_dir / "plain.onnx"
        fused_path.rename(plain_path)
        history: list[dict[str, Any]] = [
            {"smoothquant": False, "fp32_nodes": [], "calibration_cosine_min": round(trial(plain_path, []), 6)}
        ]
        chosen, smoothed = plain_path, None
        exclude: list[str] = []
        if history[-1]["calibration_cosine_min"] < CALIBRATION_TARGET:
            pristine = onnx.ModelProto()
            pristine.CopyFrom(graph)
            maxima = activation_channel_max(graph, feeds)
            smoothed = smooth(graph, maxima, SMOOTH_ALPHA, skip=fixed)
            chosen = out_dir / "smoothed.onnx"
            onnx.save(graph, str(chosen))
            first = round(trial(chosen, []), 6)
            history.append({"smoothquant": True, "fp32_nodes": [], "calibration_cosine_min": first})
            lookups = [node.name for node in graph.graph.node if node.op_type == "EmbedLayerNormalization"]
            candidates = _ffn_down_projections(graph)
            while history[-1]["calibration_cosine_min"] < CALIBRATION_TARGET and (
                len(set(exclude) & set(candidates)) < MAX_FP32_NODES
            ):
                # First fit: the free lookup, then the down-projections with the largest input outliers first;
                # the first that reaches the target is kept (each trial measured), else the best of all of them.
                scored = []
                for name in lookups + _by_outliers(candidates, pristine, maxima):
                    if name not in exclude:
                        scored.append((trial(chosen, exclude + [name]), name))
                        if scored[-1][0] >= CALIBRATION_TARGET:
                            break
                if not scored:
                    break
                enough = [item for item in scored if item[0] >= CALIBRATION_TARGET]
                best, name = enough[0] if enough else max(scored)
                exclude.append(name)
                step = {"smoothquant": True, "fp32_nodes": list(exclude), "calibration_cosine_min": round(best, 6)}
                history.append(step)
            if set(exclude) & set(candidates):
                # MatMuls kept in fp32 gain nothing from smoothing: rebuild without their Mul (same function).
                smoothed = smooth(pristine, maxima, SMOOTH_ALPHA, skip=exclude + fixed)
                onnx.save(pristine, str(chosen))
        _quantize(chosen, fused_path, exclude + fixed)
        head_record: dict[str, Any] | None = None
        if head:
            assert fp32_rows is not None  # measured above for every classifier head
            head_record = _finish_head(fused_path, head, correction_feeds, fp32_rows.mean(axis=0))
            head_record["fallback"] = _fallback_margin(fused_path, fp32_rows, correction_feeds)
            (out_dir / FALLBACK_MARGIN).write_text(json.dumps(head_record["fallback"]))
        for leftover in (plain_path, out_dir / "smoothed.onnx", fused_path.with_suffix(".trial.onnx")):
            leftover.unlink(missing_ok=True)

        quantized = onnx.load(str(fused_path))
        op_counts: dict[str, int] = {}
        for node in quantized.graph.node:
            if node.op_type in ("QAttention", "MatMulInteger", "DynamicQuantizeLinear", "Attention", "MatMul"):
                op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
        return Conversion(
            graph={
                "fused_ops": fused,
                "quantized_ops": op_counts,
                "quantization": "dynamic int8, per-channel weights, " + WEIGHT_RANGES[reduce_range()],
                "reduce_range": reduce_range(),
                "smoothquant": {"alpha": SMOOTH_ALPHA, **smoothed} if smoothed else None,
                "calibration_texts": len(feeds),
                "fp32_nodes": exclude,
                "calibration_search": history,
                "classifier_head": head_record,
            },
            library_versions=ort_versions(),
        )

    def load(self, artifact_dir: Path, threads: int) -> OrtRunner | FallbackRunner:
        fallback = artifact_dir / FALLBACK
        if fallback.exists():  # a classifier: near-ties are answered again in fp32 (fallback.py)
            margin = json.loads((artifact_dir / FALLBACK_MARGIN).read_text())["margin"]
            return FallbackRunner(artifact_dir / ARTIFACT, fallback, threads, margin)
        runner = OrtRunner(artifact_dir / ARTIFACT, threads)
        # Dynamic int8 quantizes activations with one scale per tensor, so a text's answer moves with whatever
        # shares its call (a served text at concurrency 16 reached cosine 0.9887 against its single answer).
        # Each text alone: the answer never depends on the batch, and on this CPU it is as fast as the best
        # grouping (169 vs 157 ms for 32 short texts; one padded batch of 32: 401 ms).
        runner.tokens_per_call = 1
        return runner
