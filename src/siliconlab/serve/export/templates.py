"""config.pbtxt text for each model of an exported repository (Triton's ModelConfig in protobuf text format).

Written as text rather than through tritonclient's compiled schema so that exporting needs no Triton package;
the tests parse every generated file against that schema (tritonclient.grpc.model_config_pb2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

#: ONNX TensorProto element types -> Triton data types (the ones a transformer graph's inputs/outputs use).
ONNX_TO_TRITON = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64", 6: "TYPE_INT32", 7: "TYPE_INT64", 9: "TYPE_BOOL"}


@dataclass(frozen=True)
class Tensor:
    """One input or output: name, Triton data type, dims without the batch dimension (-1 = variable)."""

    name: str
    data_type: str
    dims: tuple[int, ...]

    def pbtxt(self) -> str:
        dims = ", ".join(str(d) for d in self.dims)
        return f'  {{ name: "{self.name}" data_type: {self.data_type} dims: [ {dims} ] }}'


@dataclass(frozen=True)
class Batching:
    """What every model of the repository shares: the largest batch and the dynamic batcher's delay."""

    max_batch: int
    max_queue_delay_us: int
    instances: int


def _tensors(kind: str, tensors: Sequence[Tensor]) -> str:
    return f"{kind} [\n" + ",\n".join(t.pbtxt() for t in tensors) + "\n]\n"


def _parameters(params: dict[str, str]) -> str:
    return "".join(
        f"parameters {{ key: {json.dumps(key)} value: {{ string_value: {json.dumps(value)} }} }}\n"
        for key, value in params.items()
    )


def _dynamic_batching(batching: Batching) -> str:
    return f"dynamic_batching {{ max_queue_delay_microseconds: {batching.max_queue_delay_us} }}\n"


def onnx_config(
    name: str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    batching: Batching,
    gpu: bool,
    threads: int | None,
    tensorrt: bool = False,
) -> str:
    """Triton's onnxruntime backend on CPU or GPU instances; ORT's own thread count for CPU instances."""
    text = f'name: "{name}"\nplatform: "onnxruntime_onnx"\nbackend: "onnxruntime"\n'
    text += f"max_batch_size: {batching.max_batch}\n"
    text += _tensors("input", inputs) + _tensors("output", outputs)
    text += _dynamic_batching(batching)
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    text += f"instance_group [ {{ count: {batching.instances} kind: {kind} }} ]\n"
    if threads and not gpu:
        text += _parameters({"intra_op_thread_count": str(threads), "inter_op_thread_count": "1"})
    if tensorrt:
        text += (
            "optimization { execution_accelerators { gpu_execution_accelerator: [ "
            '{ name: "tensorrt" parameters { key: "precision_mode" value: "FP16" } } ] } }\n'
        )
    return text


def python_config(
    name: str,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    batching: Batching,
    params: dict[str, str],
) -> str:
    """A Python-backend model on CPU instances (tokenizer, post-processor): cheap steps beside the graph."""
    text = f'name: "{name}"\nbackend: "python"\nmax_batch_size: {batching.max_batch}\n'
    text += _tensors("input", inputs) + _tensors("output", outputs)
    text += _dynamic_batching(batching)
    text += f"instance_group [ {{ count: {batching.instances} kind: KIND_CPU }} ]\n"
    text += _parameters(params)
    return text


@dataclass(frozen=True)
class Step:
    """One step of an ensemble: the model and its tensor maps (model's name -> ensemble's name)."""

    model: str
    inputs: dict[str, str]
    outputs: dict[str, str]

    def pbtxt(self) -> str:
        maps = "".join(f'      input_map {{ key: "{k}" value: "{v}" }}\n' for k, v in self.inputs.items())
        maps += "".join(f'      output_map {{ key: "{k}" value: "{v}" }}\n' for k, v in self.outputs.items())
        return f'    {{\n      model_name: "{self.model}"\n      model_version: -1\n{maps}    }}'


def ensemble_config(
    name: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor], max_batch: int, steps: Sequence[Step]
) -> str:
    """Text in, the task's answer out: the client never sees token ids or logits."""
    text = f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: {max_batch}\n'
    text += _tensors("input", inputs) + _tensors("output", outputs)
    text += "ensemble_scheduling {\n  step [\n" + ",\n".join(s.pbtxt() for s in steps) + "\n  ]\n}\n"
    return text
