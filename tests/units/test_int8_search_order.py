"""onnxruntime-cpu-int8's fp32-exclusion search tries the down-projections with the largest calibration input
outliers first (first fit), so a first conversion measures few trial graphs."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from siliconlab.units.onnxruntime.cpu_int8 import _by_outliers


def test_candidates_are_ranked_by_their_input_outliers_largest_first():
    nodes = [helper.make_node("MatMul", [x, w], [f"{x}_out"], name=name)
             for name, x, w in (("quiet", "a", "wa"), ("loud", "b", "wb"), ("unmeasured", "c", "wc"))]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2])], [])
    model = helper.make_model(graph)
    maxima = {"a": np.array([1.0, 3.0]), "b": np.array([0.5, 40.0])}
    assert _by_outliers(["quiet", "unmeasured", "loud"], model, maxima) == ["loud", "quiet", "unmeasured"]
