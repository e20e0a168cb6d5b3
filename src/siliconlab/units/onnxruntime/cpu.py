"""onnxruntime-cpu-fp32: ONNX export + ORT's BERT graph fusions (EmbedLayerNorm, Attention, LayerNorm, BiasGelu).

Residual + LayerNorm stays as Add + LayerNormalization, not ORT's fused SkipLayerNormalization: in ORT 1.32
that contrib kernel is ~5x slower on the CPU than Add + LayerNormalization (MiniLM's 19x384: ~24 vs ~7 us a
node; BERT-base's 128x768: ~310 vs ~64 us), so the offline optimizer is told not to fuse it and the session
not to re-fuse it (docs/units.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from siliconlab.units.base import Conversion, CpuRunnerMixin, Unit

if TYPE_CHECKING:
    import numpy as np

    from siliconlab.models.base import LoadedModel

ARTIFACT = "model.onnx"
#: ORT graph transformers the CPU session must not run (see the module docstring).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OrtRunner(CpuRunnerMixin):
    def __init__(self, path: Path, threads: int, spinning: bool = True):
        self.path, self.threads, self.spinning = path, threads, spinning
        self.session = _session(path, threads, spinning)
        self.output_names = tuple(out.name for out in self.session.get_outputs())
        self._side: tuple[Any, Any] | None = None  # (thread pool, queue of single-threaded sessions), made on use

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return dict(zip(self.output_names, outputs))

    def run_many(self, inputs: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Independent calls (a list's groups, a served batch's) side by side: one single-threaded session per
        thread instead of each call in turn on one `threads`-wide session. At one short text per call (dynamic
        int8) ORT's intra-op threads mostly wait on each other: MiniLM int8, 200 real texts, 2-core AMD Zen 4,
        1.9x the throughput, answers bit-identical (a row's arithmetic does not depend on the thread count)."""
        if self.threads < 2 or len(inputs) < 2:
            return [self.run(ids, mask) for ids, mask in inputs]
        if self._side is None:
            import queue
            from concurrent.futures import ThreadPoolExecutor

            sessions: queue.SimpleQueue[Any] = queue.SimpleQueue()
            for _ in range(self.threads):
                sessions.put(_session(self.path, 1, self.spinning))
            self._side = (ThreadPoolExecutor(self.threads, thread_name_prefix="ort-side"), sessions)
        pool, sessions = self._side

        def one(pair: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
            session = sessions.get()
            try:
                outputs = session.run(None, {"input_ids": pair[0], "attention_mask": pair[1]})
            finally:
                sessions.put(session)
            return dict(zip(self.output_names, outputs))

        return list(pool.map(one, inputs))


def _session(path: Path, threads: int, spinning: bool) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:  # two sessions taking turns (fallback.py): idle workers must not spin on the other's cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
    )


def export_fused(model: LoadedModel, out_dir: Path) -> tuple[Path, dict[str, int]]:
    """Export to ONNX and apply ORT's transformer optimizer; returns the fused graph and fusion counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from siliconlab.units.onnxruntime.export import export_onnx

    raw = export_onnx(model, out_dir / "exported.onnx")
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    fusion = FusionOptions("bert")
    fusion.enable_skip_layer_norm = False
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=model.num_heads,
        hidden_size=model.hidden_size,
        opt_level=1,
        optimization_options=fusion,
    )
    fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
    pruned = prune_constant_work(optimized.model)
    if pruned:
        fused["pruned_nodes"] = pruned
    path = out_dir / ARTIFACT
    optimized.save_model_to_file(str(path))
    raw.unlink()
    return path, fused


def prune_constant_work(graph: Any) -> int:
    """Drop nodes that compute nothing the answer depends on; returns how many went. Exact rewrites only.

    At MiniLM's 19 tokens each node costs ~3-7 us of dispatch and thread hand-off, more than its arithmetic:
    - the exporter's all-zero token_type_ids (Shape -> ConstantOfShape(0) -> Cast) feed the fused embedding
      node; row 0 of the segment table is folded into the position table and the optional input dropped;
    - F.normalize's Div(x, Expand(norm, Shape(x))) is Div(x, norm): Div broadcasts to the same shape.
    """
    import numpy as np
    from onnx import numpy_helper

    nodes = graph.graph.node
    producers = {out: node for node in nodes for out in node.output}
    inits = {init.name: init for init in graph.graph.initializer}

    def zero_constant(name: str) -> bool:
        node = producers.get(name)
        while node is not None and node.op_type == "Cast":
            node = producers.get(node.input[0])
        if node is None or node.op_type != "ConstantOfShape":
            return False
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        return value is None or not numpy_helper.to_array(value).any()

    for node in nodes:
        if node.op_type != "EmbedLayerNormalization" or len(node.input) < 5 or not node.input[1]:
            continue
        position, segment = inits.get(node.input[3]), inits.get(node.input[4])
        if position is None or segment is None or not zero_constant(node.input[1]):
            continue
        if sum(node.input[3] in other.input for other in nodes) != 1:
            continue
        table = numpy_helper.to_array(position) + numpy_helper.to_array(segment)[0]
        position.CopyFrom(numpy_helper.from_array(table.astype(np.float32), position.name))
        node.input[1] = ""
        node.input[4] = ""
    for node in nodes:
        if node.op_type != "Div":
            continue
        expand = producers.get(node.input[1])
        if expand is None or expand.op_type != "Expand":
            continue
        shape = producers.get(expand.input[1])
        whole = shape is not None and all(a.name == "start" and a.i == 0 for a in shape.attribute)
        if whole and shape is not None and shape.op_type == "Shape" and shape.input[0] == node.input[0]:
            node.input[1] = expand.input[0]
    removed = 0
    while True:
        wanted = {name for node in nodes for name in node.input} | {out.name for out in graph.graph.output}
        dead = [node for node in nodes if not any(out in wanted for out in node.output if out)]
        if not dead:
            break
        for node in dead:
            nodes.remove(node)
        removed += len(dead)
    used = {name for node in nodes for name in node.input}
    for init in [init for init in graph.graph.initializer if init.name not in used]:
        graph.graph.initializer.remove(init)
    return removed


def ort_versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


class OnnxRuntimeCpuFp32(Unit):
    name = "onnxruntime-cpu-fp32"
    engine = "onnxruntime"
    device = "cpu"
    precision = "fp32"
    recipe = "fused-no-skiplayernorm-pruned"
    requires = ("onnx", "onnxruntime")

    def convert(self, model: LoadedModel, out_dir: Path) -> Conversion:
        _, fused = export_fused(model, out_dir)
        return Conversion(graph={"fused_ops": fused}, library_versions=ort_versions())

    def load(self, artifact_dir: Path, threads: int) -> OrtRunner:
        return OrtRunner(artifact_dir / ARTIFACT, threads)
