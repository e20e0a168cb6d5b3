"""A classifier's head through int8: calibrate on what the head reads, keep the head fp32, correct its bias.

A classifier graph ends in a tiny Linear (hidden -> labels). Two things go wrong if it is treated like the
encoder: (1) the int8 search's calibration cosine, taken on 2-3 logits, hardly moves when the embedding
drifts, so the search stops too early; (2) int8 error has a systematic part that shifts every text's logit
margin the same way, moving the decision boundary (measured on `sentiment`: 124 vs 101 negatives called
positive, accuracy -1.1 points). So during calibration the head's input is exposed as an extra output and
the search judges that embedding, exactly as it does for an embedding model; the head's MatMul stays fp32
(its arithmetic is negligible); and after quantization the mean logit shift measured on the task's own
training texts is subtracted from the head's bias — bias correction (Nagel et al., 2019, "Data-Free
Quantization Through Weight Equalization and Bias Correction").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import onnx

LOGITS = "logits"


@dataclass(frozen=True)
class HeadSite:
    matmul: str  # the node computing input @ W (Gemm or MatMul): kept in fp32
    input: str  # the tensor it reads: the pooled embedding the search calibrates on
    bias: str  # the initializer holding the head's bias: where the correction goes

    @property
    def exclude(self) -> list[str]:
        """Names to keep out of quantization: ORT's quantizer splits a Gemm into `<name>_MatMul` + `<name>_Add`
        before quantizing, so the excluded name must be the split one as well."""
        return [self.matmul, f"{self.matmul}_MatMul"]


def find_head(graph: onnx.ModelProto) -> HeadSite | None:
    """The classifier head (Gemm, or MatMul + Add of an initializer) producing `logits`; None otherwise."""
    if [out.name for out in graph.graph.output] != [LOGITS]:
        return None
    producers = {out: node for node in graph.graph.node for out in node.output}
    initializers = {init.name for init in graph.graph.initializer}
    node = producers.get(LOGITS)
    if node is None:
        return None
    if node.op_type == "Gemm" and len(node.input) == 3 and node.input[2] in initializers:
        return HeadSite(node.name, node.input[0], node.input[2])
    if node.op_type != "Add":
        return None
    for bias, other in ((node.input[1], node.input[0]), (node.input[0], node.input[1])):
        matmul = producers.get(other)
        if bias in initializers and matmul is not None and matmul.op_type == "MatMul":
            return HeadSite(matmul.name, matmul.input[0], bias)
    return None


def expose_input(graph: onnx.ModelProto, site: HeadSite) -> None:
    """Add the head's input as a graph output (last), so calibration can compare embeddings."""
    from onnx import TensorProto, helper

    graph.graph.output.append(helper.make_tensor_value_info(site.input, TensorProto.FLOAT, None))


def hide_input(graph: onnx.ModelProto, site: HeadSite) -> None:
    kept = [out for out in graph.graph.output if out.name != site.input]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)


def correct_bias(graph: onnx.ModelProto, site: HeadSite, shift: np.ndarray) -> None:
    """bias += shift (shift = mean fp32 logits - mean int8 logits over calibration texts)."""
    from onnx import numpy_helper

    for index, init in enumerate(graph.graph.initializer):
        if init.name == site.bias:
            bias = numpy_helper.to_array(init)
            updated = (bias + shift.reshape(bias.shape)).astype(bias.dtype)
            graph.graph.initializer[index].CopyFrom(numpy_helper.from_array(updated, site.bias))
            return
    raise KeyError(f"the head's bias {site.bias} is not an initializer")


def mean_logits(runner, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Mean logits over texts run one at a time (as users send them; no padding neighbours)."""
    import numpy as np

    return np.mean([runner.run(f["input_ids"], f["attention_mask"])[LOGITS][0] for f in feeds], axis=0)
