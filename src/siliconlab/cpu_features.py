"""What this CPU's arithmetic can do: the instruction sets that decide which CPU recipe wins.

The same model runs 2.4x faster than PyTorch on an AVX2 CPU and 6-9x on one with AMX; an "fp32" OpenVINO model
silently runs bf16 where AVX-512 BF16 or AMX exist. So units ask this module, never guess: a bf16 unit runs only
where bf16 is native, static int8 only where int8 dot products are (VNNI, AMX, ARM dot product), and the bench
and `siliconlab units` print what was found. Read from /proc/cpuinfo (Linux) or sysctl (macOS); no library.
"""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: x86 flags that matter for inference, in the kernel's /proc/cpuinfo spelling.
X86_FLAGS = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip
#: ARM features (Linux /proc/cpuinfo "Features"; macOS hw.optional.arm.FEAT_* mapped to the same names).
ARM_FLAGS = ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")
_MAC_FEATURES = {"FEAT_DotProd": "asimddp", "FEAT_I8MM": "i8mm", "FEAT_BF16": "bf16", "FEAT_SME": "sme"}


@dataclass(frozen=True)
class CpuFeatures:
    arch: str
    flags: frozenset[str] = field(default_factory=frozenset)

    def has(self, *names: str) -> bool:
        return any(name in self.flags for name in names)

    @property
    def bf16_native(self) -> bool:
        """bf16 dot products in hardware (AVX-512 BF16, AMX-BF16, ARM BF16): elsewhere bf16 is emulated in fp32."""
        return self.has("avx512_bf16", "amx_bf16", "bf16")

    @property
    def int8_dot(self) -> bool:
        """int8 dot products that accumulate in int32 (VNNI, AMX-INT8, ARM SDOT): elsewhere u8×s8 products go
        through saturating int16 (AVX2 vpmaddubsw), which is why int8 recipes there use 7-bit weights."""
        return self.has("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")

    @property
    def matrix_engine(self) -> str | None:
        if self.has("amx_bf16", "amx_int8"):
            return "AMX"
        return "SME" if self.has("sme") else None

    def bf16_reason(self) -> str:
        return "" if self.bf16_native else (
            f"this CPU has no native bf16 arithmetic ({self.summary()}; needs AVX-512 BF16, AMX or ARM BF16): "
            "bf16 would be emulated in fp32, slower than the fp32 unit"
        )  # fmt: skip

    def int8_dot_reason(self) -> str:
        return "" if self.int8_dot else (
            f"this CPU has no int8 dot-product instructions ({self.summary()}; needs AVX-512 VNNI, AVX-VNNI, AMX "
            "or ARM dot product): static int8 ran ~1.4x slower than fp32 on such a CPU (AVX2, docs/units.md)"
        )  # fmt: skip

    def summary(self) -> str:
        """One short line, e.g. 'x86_64 AVX2 FMA AVX-512 (BW, VNNI, BF16) AMX (bf16, int8)'."""
        if self.arch in ("x86_64", "AMD64", "i386", "i686"):
            parts = [self.arch] + [name.upper() for name in ("avx2", "fma") if name in self.flags]
            wide = [label for flag, label in (("avx512bw", "BW"), ("avx512_vnni", "VNNI"), ("avx512_bf16", "BF16"),
                                              ("avx512_fp16", "FP16")) if flag in self.flags]  # fmt: skip
            if "avx512f" in self.flags:
                parts.append(f"AVX-512 ({', '.join(wide)})" if wide else "AVX-512")
            if "avx_vnni" in self.flags:
                parts.append("AVX-VNNI")
            amx = [kind for kind in ("bf16", "int8") if f"amx_{kind}" in self.flags]
            if amx:
                parts.append(f"AMX ({', '.join(amx)})")
            return " ".join(parts)
        names = {"asimd": "NEON", "asimddp": "DotProd", "i8mm": "I8MM", "bf16": "BF16", "sve": "SVE",
                 "sve2": "SVE2", "sme": "SME"}  # fmt: skip
        return " ".join([self.arch] + [label for flag, label in names.items() if flag in self.flags])

    def to_dict(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "flags": sorted(self.flags),
            "summary": self.summary(),
            "bf16_native": self.bf16_native,
            "int8_dot": self.int8_dot,
            "matrix_engine": self.matrix_engine,
        }


def parse_cpuinfo(text: str, arch: str) -> CpuFeatures:
    """Flags of the first processor block ("flags" on x86, "Features" on ARM), filtered to those that matter."""
    wanted = set(X86_FLAGS) | set(ARM_FLAGS)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return CpuFeatures(arch, frozenset(set(value.split()) & wanted))
    return CpuFeatures(arch)


def _mac_features(arch: str) -> CpuFeatures:
    flags = {"asimd"} if arch == "arm64" else set()
    for feature, name in _MAC_FEATURES.items():
        try:
            out = subprocess.run(["sysctl", "-n", f"hw.optional.arm.{feature}"], capture_output=True, text=True,
                                 timeout=5)  # fmt: skip
        except OSError:
            break
        if out.stdout.strip() == "1":
            flags.add(name)
    return CpuFeatures(arch, frozenset(flags))


@lru_cache(maxsize=1)
def detect() -> CpuFeatures:
    arch = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        return parse_cpuinfo(cpuinfo.read_text(errors="replace"), arch)
    if platform.system() == "Darwin":
        return _mac_features(arch)
    return CpuFeatures(arch)
