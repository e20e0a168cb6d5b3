"""Machine facts recorded with every result, so a number is never separated from where it was measured."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if platform.system() == "Darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The instruction sets that decide CPU recipes (cpu_features.py), sorted."""
    from siliconlab.cpu_features import detect

    return sorted(detect().flags)


def cpu_features() -> dict[str, Any]:
    from siliconlab.cpu_features import detect

    return detect().to_dict()


def default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_features": cpu_features(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "gpus": gpu_info(),
        "libraries": library_versions(),
        "git_commit": git_commit(),
    }


def git_commit() -> str | None:
    """The commit of the siliconlab checkout, when running from one."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except OSError:
        return None
    commit = out.stdout.strip()
    return (commit + ("-dirty" if dirty.stdout.strip() else "")) if out.returncode == 0 and commit else None


def library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in (
        "siliconlab",
        "torch",
        "transformers",
        "onnxruntime",
        "openvino",
        "nncf",
        "numpy",
        "coremltools",
        "mlx",
    ):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def gpu_info() -> list[dict[str, Any]]:
    try:
        import torch

        if not torch.cuda.is_available():
            return []
        return [
            {
                "name": torch.cuda.get_device_name(i),
                "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
            }
            for i in range(torch.cuda.device_count())
        ]
    except Exception:
        return []
