"""What can be checked on a Core ML package without running it (works on Linux), and the ANE placement on macOS.

From the saved package's spec alone: it reloads; it is an ML Program; its inputs and outputs have the
documented names, types, enumerated shapes and ranks/fixed sizes; the op histogram; the compute precision
(the dtypes the non-const ops produce); how many weights are stored quantized; the package size; that every
float constant (inline or in the weight blob) is finite — an fp32 constant beyond fp16's range becomes ±inf
when the converter casts it, which the Linux checks would never notice but a Mac's fp16 kernels would.

What the spec cannot say is *where* each op will run: that is decided by Core ML when the model is loaded
on a Mac. On macOS 14.4+ `compute_plan_devices()` asks Core ML's MLComputePlan for each op's preferred
device (CPU / GPU / Neural Engine) for a compute-unit setting.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from siliconlab.models.base import LoadedModel

INPUT_NAMES = ("input_ids", "attention_mask")


class StructureError(ValueError):
    """The package does not have the documented interface."""


def load_spec(package: Path) -> Any:
    import coremltools as ct

    return ct.models.MLModel(str(package), skip_model_load=True).get_spec()


def _main_block(spec: Any) -> Any:
    function = spec.mlProgram.functions["main"]
    return function.block_specializations[function.opset]


def _walk(operations: Any):
    for op in operations:
        yield op
        for block in op.blocks:
            yield from _walk(block.operations)


def _float_payload(value: Any, weights_dir: Path, readers: dict[str, Any]) -> Any:
    """The float array a MIL Value holds (inline or at an offset of a weight blob), or None if not floats."""
    import numpy as np
    from coremltools.proto import MIL_pb2

    if value.type.WhichOneof("type") != "tensorType":
        return None
    dtype = value.type.tensorType.dataType
    if dtype not in (MIL_pb2.DataType.FLOAT16, MIL_pb2.DataType.FLOAT32, MIL_pb2.DataType.FLOAT64):
        return None
    if value.WhichOneof("value") == "blobFileValue":
        from coremltools.libmilstoragepython import _BlobStorageReader

        blob = str(weights_dir / value.blobFileValue.fileName.split("/")[-1])
        reader = readers.setdefault(blob, _BlobStorageReader(blob))
        if dtype == MIL_pb2.DataType.FLOAT16:
            return np.frombuffer(reader.read_fp16_data(value.blobFileValue.offset).tobytes(), np.float16)
        return np.asarray(reader.read_float_data(value.blobFileValue.offset))
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if kind == "bytes":  # fp16 is stored inline as raw bytes
        return np.frombuffer(tensor.bytes.values, np.float16)
    return np.asarray(getattr(tensor, kind).values, dtype=np.float64) if kind in ("floats", "doubles") else None


def float_constants(package: Path, spec: Any | None = None) -> Iterator[tuple[str, str, Any]]:
    """(op output name, MIL dtype name, values) for every float constant of the program's main function."""
    from coremltools.proto import MIL_pb2

    spec = load_spec(package) if spec is None else spec
    weights_dir = package / "Data" / "com.apple.CoreML" / "weights"
    readers: dict[str, Any] = {}
    for op in _walk(_main_block(spec).operations):
        for key, value in op.attributes.items():
            values = _float_payload(value, weights_dir, readers)
            if values is not None:
                name = op.outputs[0].name if op.outputs else f"{op.type}.{key}"
                yield name, MIL_pb2.DataType.Name(value.type.tensorType.dataType), values


def nonfinite_constants(package: Path, spec: Any | None = None) -> list[str]:
    """Names of the float constants holding an inf or NaN (an fp16 program should have none)."""
    import numpy as np

    return [name for name, _, values in float_constants(package, spec) if not np.isfinite(values).all()]


def _dims(tensor_type: Any) -> list[int | None]:
    dims: list[int | None] = []
    for dim in tensor_type.dimensions:
        dims.append(dim.constant.size if dim.WhichOneof("dimension") == "constant" else None)
    return dims


def expected_output_dims(model: LoadedModel) -> dict[str, list[int | None]]:
    if model.head.classifier:
        return {"logits": [None, int(model.config.num_labels)]}
    hidden = model.hidden_size
    return {"token_states": [None, None, hidden], "sentence_embedding": [None, hidden]}


def inspect_package(package: Path, model: LoadedModel, expected_shapes: list[tuple[int, int]]) -> dict[str, Any]:
    """Structural facts for manifest.json; raises StructureError where the package breaks its interface."""
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2

    spec = load_spec(package)
    if spec.WhichOneof("Type") != "mlProgram":
        raise StructureError(f"{package.name} is a {spec.WhichOneof('Type')}, not an ML Program")
    inputs = {}
    for feature in spec.description.input:
        array = feature.type.multiArrayType
        shapes = [tuple(s.shape) for s in array.enumeratedShapes.shapes]
        dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
        inputs[feature.name] = {"dtype": dtype, "enumerated_shapes": shapes}
    if tuple(inputs) != INPUT_NAMES:
        raise StructureError(f"inputs are {list(inputs)}, expected {list(INPUT_NAMES)}")
    for name, facts in inputs.items():
        if facts["dtype"] != "INT32" or facts["enumerated_shapes"] != [tuple(s) for s in expected_shapes]:
            raise StructureError(f"input '{name}' is {facts}, expected INT32 with shapes {expected_shapes}")

    block = _main_block(spec)
    produced = {out.name: out.type.tensorType for op in _walk(block.operations) for out in op.outputs}
    expected = expected_output_dims(model)
    outputs = {}
    for name in [feature.name for feature in spec.description.output]:
        tensor = produced[name]
        outputs[name] = {"dtype": MIL_pb2.DataType.Name(tensor.dataType), "dims": _dims(tensor)}
    if list(outputs) != list(model.output_names):
        raise StructureError(f"outputs are {list(outputs)}, expected {list(model.output_names)}")
    for name, dims in expected.items():
        if outputs[name]["dims"] != dims:
            raise StructureError(f"output '{name}' has dims {outputs[name]['dims']}, expected {dims} (None = flexible)")

    ops = Counter(op.type for op in _walk(block.operations))
    float_outputs = Counter(
        MIL_pb2.DataType.Name(out.type.tensorType.dataType)
        for op in _walk(block.operations)
        if op.type != "const" and not op.type.startswith("constexpr")
        for out in op.outputs
        if MIL_pb2.DataType.Name(out.type.tensorType.dataType).startswith("FLOAT")
    )
    nonfinite = nonfinite_constants(package, spec)
    if nonfinite:
        raise StructureError(f"non-finite constants (inf/NaN after the fp16 cast): {', '.join(nonfinite[:5])}")
    precision = "float16" if set(float_outputs) == {"FLOAT16"} else "mixed" if "FLOAT16" in float_outputs else "float32"
    weights = sum(p.stat().st_size for p in package.rglob("*.bin"))
    return {
        "format": "mlprogram",
        "specification_version": spec.specificationVersion,
        "opset": spec.mlProgram.functions["main"].opset,
        "inputs": {
            name: {**facts, "enumerated_shapes": [list(s) for s in facts["enumerated_shapes"]]}
            for name, facts in inputs.items()
        },
        "outputs": outputs,
        "ops": dict(ops.most_common()),
        "compute_precision": precision,
        "float_op_outputs": dict(float_outputs),
        "nonfinite_constants": 0,
        "quantized_weight_ops": sum(n for kind, n in ops.items() if kind.startswith("constexpr")),
        "weight_bytes": weights,
        "package_bytes": sum(p.stat().st_size for p in package.rglob("*") if p.is_file()),
        "reloaded": True,
    }


def compute_plan_devices(package: Path, compute_unit: str) -> dict[str, int] | str:
    """macOS 14.4+: how many ops Core ML prefers to run on each device, or the reason it can't be asked."""
    if sys.platform != "darwin":
        return "needs macOS (Core ML's MLComputePlan)"
    try:
        import coremltools as ct
        from coremltools.models.compute_plan import MLComputePlan

        units = getattr(ct.ComputeUnit, compute_unit)
        mlmodel = ct.models.MLModel(str(package), compute_units=units)
        plan = MLComputePlan.load_from_path(mlmodel.get_compiled_model_path(), compute_units=units)
        devices: Counter[str] = Counter()
        for op in plan.model_structure.program.functions["main"].block.operations:
            if op.operator_name == "const":
                continue
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            device = type(usage.preferred_compute_device).__name__ if usage is not None else "none"
            devices[device.replace("ML", "").replace("ComputeDevice", "")] += 1
        return dict(devices)
    except Exception as exc:  # older macOS or coremltools: say so instead of failing the conversion
        return f"MLComputePlan unavailable: {type(exc).__name__}: {exc}"
