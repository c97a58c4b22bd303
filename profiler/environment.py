"""Host, GPU and runtime versions recorded with every LUT (provenance).

Versions come from package metadata (``importlib.metadata``), so no runtime is imported just to read
its version. GPU facts come from torch (a core dependency) and ``nvidia-smi`` when available.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .devices import DeviceDescriptor

#: Reported name -> distribution names to try (first installed wins).
PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_cu13",
                 "tensorrt_cu12"),
    "cuda-python": ("cuda-python", "cuda-bindings"),
    "pycuda": ("pycuda",),
    "sgnas": ("sgnas",),
}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that affect measurements (absent ones are left out)."""
    out = {}
    for name, dists in PACKAGES.items():
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (Linux) or :mod:`platform`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str | None:
    """This installation's id (``/etc/machine-id``, systemd), which tells two hosts of the same
    kind apart; ``None`` where there is none."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        text = _read(path)
        if text:
            return text
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _nvidia_smi() -> list[dict[str, str]]:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
    try:
        out = subprocess.run([smi, f"--query-gpu={query}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    keys = ["name", "driver", "memory", "max_sm_clock", "power_limit"]
    return [dict(zip(keys, (x.strip() for x in line.split(",")))) for line in out.splitlines()
            if line.strip()]


def gpu_info() -> dict:
    """Name, compute capability, CUDA/cuDNN versions (torch) and driver (nvidia-smi) of the GPU."""
    info: dict = {}
    try:
        import torch

        if torch.cuda.is_available():
            dev = torch.cuda.current_device()
            props = torch.cuda.get_device_properties(dev)
            info.update(
                name=props.name,
                compute_capability=f"{props.major}.{props.minor}",
                memory_gib=round(props.total_memory / 2**30, 1),
                multiprocessors=props.multi_processor_count,
                torch_cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            )
    except Exception:  # a broken CUDA install: fall back to nvidia-smi alone
        pass
    smi = _nvidia_smi()
    if smi:
        first = smi[0]
        info.setdefault("name", first.get("name"))
        info.update(driver=first.get("driver"), memory=first.get("memory"),
                    max_sm_clock=first.get("max_sm_clock"), power_limit=first.get("power_limit"),
                    count=len(smi))
    return info


def collect_environment(device: "DeviceDescriptor | None" = None) -> dict:
    """Facts about this host for a LUT's provenance; GPU facts when ``device`` is a GPU device."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    env = {
        "hostname": platform.node(),
        "machine_id": machine_id(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(cpus) if cpus is not None else os.cpu_count(),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "packages": package_versions(),
    }
    if device is not None and device.kind == "gpu":
        env["gpu"] = gpu_info()
    return env
