"""Units for the CPU's own matrix engines: every OpenVINO unit computes in the precision its name says (read back
from the compiled graph), bf16 and static int8 run only where the CPU has that arithmetic and say why not elsewhere,
and the manifest records what was executed."""

from __future__ import annotations

from pathlib import Path

import pytest

from siliconlab.convert.pipeline import Converter
from siliconlab.cpu_features import CpuFeatures, detect
from siliconlab.models import resolve
from siliconlab.units import get_unit
from siliconlab.units.openvino import cpu_bf16, cpu_int8_static

AVX2_ONLY = CpuFeatures("x86_64", frozenset({"avx", "avx2", "fma", "f16c"}))
AMX = CpuFeatures("x86_64", frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                                       "amx_tile", "amx_bf16", "amx_int8"}))  # fmt: skip


def _convert(tiny_bert: Path, tmp_path: Path, name: str):
    unit = get_unit(name)
    if not unit.availability().ok:
        pytest.skip(f"{name} unavailable on this CPU: {unit.availability().reason}")
    return Converter(resolve(str(tiny_bert)), tmp_path, threads=1).convert_unit(unit)


def test_fp32_units_execute_fp32_on_every_cpu(tiny_bert: Path, tmp_path: Path):
    """OpenVINO's CPU plugin defaults to bf16 on AMX / AVX-512 BF16: the fp32 units pin f32 and read it back. The
    weight-only int8 unit's products are fp32 too, except where the CPU has int8 dot products: there OpenVINO
    quantizes its activations on the fly, and the manifest says int8."""
    weight_only = "int8" if detect().int8_dot else "fp32"
    for name, executed in (("openvino-cpu-fp32", "fp32"), ("openvino-cpu-int8", weight_only)):
        outcome = _convert(tiny_bert, tmp_path, name)
        assert outcome.ok, outcome.error
        assert outcome.manifest["executed_precision"] == executed, outcome.manifest
        assert outcome.manifest["parity"]["cosine_min"] >= 0.99
        assert outcome.manifest["cpu"] == detect().summary()


def test_bf16_unit_runs_bf16_within_the_half_precision_gate(tiny_bert: Path, tmp_path: Path):
    outcome = _convert(tiny_bert, tmp_path, "openvino-cpu-bf16")
    assert outcome.ok, outcome.error
    assert outcome.manifest["executed_precision"] == "bf16"
    assert outcome.manifest["parity"]["passed"] and outcome.manifest["parity"]["threshold"] == 0.999


def test_static_int8_unit_runs_int8_matmuls(tiny_bert: Path, tmp_path: Path):
    outcome = _convert(tiny_bert, tmp_path, "openvino-cpu-int8-static")
    assert outcome.ok, outcome.error
    executed = outcome.manifest["executed_precision"]
    assert executed.startswith("int8"), executed  # the activations are int8 too, not just the weights
    quantization = outcome.manifest["graph"]["quantization"]
    assert quantization["calibration_check"]["pooled_cosine_min"] > 0.9  # an embedding model: judged by cosine
    assert quantization["matmul_precisions"].get("int8", 0) >= 1


def test_isa_units_say_why_not_on_a_cpu_without_that_arithmetic(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cpu_bf16, "detect", lambda: AVX2_ONLY)
    monkeypatch.setattr(cpu_int8_static, "detect", lambda: AVX2_ONLY)
    bf16 = get_unit("openvino-cpu-bf16").platform_availability()
    int8 = get_unit("openvino-cpu-int8-static").platform_availability()
    assert not bf16.ok and "no native bf16" in bf16.reason and "AVX2" in bf16.reason
    assert not int8.ok and "no int8 dot-product" in int8.reason
    monkeypatch.setattr(cpu_bf16, "detect", lambda: AMX)
    monkeypatch.setattr(cpu_int8_static, "detect", lambda: AMX)
    assert get_unit("openvino-cpu-bf16").platform_availability().ok
    assert get_unit("openvino-cpu-int8-static").platform_availability().ok
