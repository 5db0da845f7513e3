"""What a benchmark ran on: package versions and hardware, for the report (numbers without them mean little)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

PACKAGES = ("llama-ort", "onnxruntime", "onnxruntime-gpu", "onnxruntime-genai", "onnxruntime-genai-cuda", "torch",
            "transformers", "llama-cpp-python", "numpy", "onnx")


def versions() -> dict[str, str]:
    """Installed versions of the packages that matter (absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def gpus() -> list[str]:
    """`name, memory, driver` of each NVIDIA GPU, as nvidia-smi reports them."""
    if not shutil.which("nvidia-smi"):
        return []
    query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
    try:
        return subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return []


def hardware() -> dict:
    """The machine, and how busy it was: the load average (1, 5, 15 minutes) when the report is made tells
    whether other work shared the CPUs during the runs."""
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "memory_gb": memory_gb(), "gpus": gpus(), "os": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
