"""Where the Ray engine puts its actors, from the nodes' CPUs and GPUs (pure planning: no Ray needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.batch.ray_placement import Node, needs_gpu, plan
from siliconlab.errors import UsageError

CPU_NODES = [Node("a" * 8, "10.0.0.1", 8, 0), Node("b" * 8, "10.0.0.2", 4, 0), Node("c" * 8, "10.0.0.3", 2, 0)]
GPU_NODES = [Node("g" * 8, "10.0.0.9", 16, 4), Node("h" * 8, "10.0.0.8", 8, 2), *CPU_NODES[:1]]


def _shape(slots: list) -> list[tuple[str, float, int, int]]:
    return [(s.node.node_id[0], s.cpus, s.gpus, s.threads) for s in slots]


def test_a_cpu_unit_gets_one_actor_per_node_using_all_its_cpus() -> None:
    assert _shape(plan(CPU_NODES, "onnxruntime-cpu-int8", gpu=False)) == [
        ("a", 8, 0, 8), ("b", 4, 0, 4), ("c", 2, 0, 2),
    ]  # fmt: skip


def test_actors_n_are_spread_by_cpus_per_actor() -> None:
    # 7 actors over 8 + 4 + 2 CPUs: each next one where it gets the most CPUs -> 4 on a (2 each), 2 on b, 1 on c
    assert _shape(plan(CPU_NODES, "onnxruntime-cpu-int8", gpu=False, actors=7)) == [
        *[("a", 2, 0, 2)] * 4, *[("b", 2, 0, 2)] * 2, ("c", 2, 0, 2),
    ]  # fmt: skip
    # more actors than CPUs: each reserves a fraction of one CPU (so all can be placed) and runs one thread
    assert _shape(plan([Node("c" * 8, "x", 2, 0)], "torch-cpu-fp32", gpu=False, actors=4)) == [("c", 0.5, 0, 1)] * 4


def test_a_gpu_unit_gets_one_actor_per_gpu_with_the_node_cpus_shared() -> None:
    assert _shape(plan(GPU_NODES, "torch-cuda-fp16-graph", gpu=True)) == [
        *[("g", 4, 1, 4)] * 4, *[("h", 4, 1, 4)] * 2,
    ]  # fmt: skip
    assert _shape(plan(GPU_NODES, "torch-cuda-fp16-graph", gpu=True, actors=3)) == [
        *[("g", 8, 1, 8)] * 2,
        ("h", 8, 1, 8),
    ]


def test_a_cluster_without_what_the_unit_needs_is_refused_in_one_line() -> None:
    with pytest.raises(UsageError, match=r"needs a GPU and the Ray cluster has none \(3 node\(s\), 14 CPU\(s\), 0 GPU"):
        plan(CPU_NODES, "torch-cuda-fp16-graph", gpu=True)
    with pytest.raises(UsageError, match="--actors 7 asks for more GPU actors than the cluster's 6 GPU"):
        plan(GPU_NODES, "torch-cuda-fp16-graph", gpu=True, actors=7)
    with pytest.raises(UsageError, match="no node with a whole CPU"):
        plan([Node("z" * 8, "x", 0.5, 0)], "torch-cpu-fp32", gpu=False)


def test_which_units_need_a_gpu() -> None:
    assert needs_gpu("torch-cuda-fp16-graph", CPU_NODES) and not needs_gpu("onnxruntime-cpu-int8", GPU_NODES)
    assert needs_gpu("best", GPU_NODES) and not needs_gpu("best", CPU_NODES)
    with pytest.raises(UsageError, match="unknown unit 'no-such-unit'"):
        needs_gpu("no-such-unit", CPU_NODES)


def test_actors_without_the_ray_engine_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from siliconlab.cli import app

    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "hello"}\n')
    args = ["batch", "minilm", "--input", str(source), "--out", str(tmp_path / "out.jsonl"), "--actors", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--actors needs --engine ray" in result.output, result.output
    assert not (tmp_path / "out.jsonl").exists()
