"""The CPU's instruction sets, read from /proc/cpuinfo as the three CPU families we meet present them."""

from __future__ import annotations

from siliconlab.cpu_features import CpuFeatures, detect, parse_cpuinfo

ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx f16c fma avx2 bmi2\n\nprocessor\t: 1\n"
SAPPHIRE_RAPIDS = ("flags\t\t: fpu avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx_vnni avx512_bf16 avx512_fp16 "
                   "amx_bf16 amx_tile amx_int8\n")  # fmt: skip
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp sha512 sve i8mm bf16 sve2\n"


def test_avx2_only_cpu_has_neither_bf16_nor_int8_dot_products():
    cpu = parse_cpuinfo(ZEN3, "x86_64")
    assert cpu.flags == {"avx", "avx2", "fma", "f16c"}
    assert not cpu.bf16_native and not cpu.int8_dot and cpu.matrix_engine is None
    assert cpu.summary() == "x86_64 AVX2 FMA"
    assert "no native bf16" in cpu.bf16_reason() and "no int8 dot-product" in cpu.int8_dot_reason()


def test_amx_xeon_has_the_matrix_engine():
    cpu = parse_cpuinfo(SAPPHIRE_RAPIDS, "x86_64")
    assert cpu.bf16_native and cpu.int8_dot and cpu.matrix_engine == "AMX"
    assert cpu.summary() == "x86_64 AVX2 FMA AVX-512 (BW, VNNI, BF16, FP16) AVX-VNNI AMX (bf16, int8)"
    assert cpu.bf16_reason() == "" and cpu.int8_dot_reason() == ""


def test_arm_features_line():
    cpu = parse_cpuinfo(GRAVITON3, "aarch64")
    assert cpu.int8_dot and cpu.bf16_native and cpu.matrix_engine is None
    assert cpu.summary() == "aarch64 NEON DotProd I8MM BF16 SVE SVE2"


def test_this_machine_is_described():
    cpu = detect()
    assert isinstance(cpu, CpuFeatures) and cpu.summary().startswith(cpu.arch)
    assert set(cpu.to_dict()) >= {"flags", "summary", "bf16_native", "int8_dot", "matrix_engine"}
