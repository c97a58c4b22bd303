"""Which TensorRT and CUDA versions run which GPU architecture, checked before anything is built.

Sources: the TensorRT 10.x/11.x release notes and support matrices (Volta, compute capability 7.0,
deprecated in 10.0 and removed in 10.5; CUDA 13 support from 10.13; TensorRT 11 is built against
CUDA 13 only), the CUDA 13.0 release notes (Maxwell, Pascal and Volta dropped) and the TensorRT
support matrix's TF32 column (Ampere and newer). :func:`check_tensorrt` refuses a combination outside
:data:`MATRIX` with one line naming what to install.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sgnas.errors import SgnasError

Version = tuple[int, int]

#: pip requirements that install a TensorRT and a matching cuda-python for one CUDA major.
INSTALL = {
    12: "pip install 'tensorrt-cu12>=10.0,<11' 'cuda-python>=12,<13'",
    13: "pip install 'tensorrt-cu13>=10.13' 'cuda-python>=13,<14'",
}
VOLTA_INSTALL = "pip install 'tensorrt-cu12>=10.0,<10.5' 'cuda-python>=12,<13'"


@dataclass(frozen=True)
class ArchSupport:
    """One GPU architecture: compute capabilities ``[cc_min, cc_max]`` and what runs it."""

    arch: str
    cc_min: Version
    cc_max: Version
    examples: str
    #: TensorRT versions (major, minor), inclusive; ``trt_max`` None = no upper bound known.
    trt_min: Version
    trt_max: Version | None
    #: CUDA major versions that support the architecture.
    cuda_majors: tuple[int, ...]
    tf32: bool
    reason: str
    install: str

    def covers(self, cc: Version) -> bool:
        return self.cc_min <= cc <= self.cc_max

    def trt_range(self) -> str:
        lo = f"{self.trt_min[0]}.{self.trt_min[1]}"
        return f"{lo}-{self.trt_max[0]}.{self.trt_max[1]}" if self.trt_max else f">= {lo}"


MATRIX: tuple[ArchSupport, ...] = (
    ArchSupport("Volta", (7, 0), (7, 2), "V100", (10, 0), (10, 4), (12,), False,
                "TensorRT removed Volta in 10.5 and CUDA 13 dropped it; without TensorRT 10.0-10.4 on "
                "CUDA 12 use the torch CUDA-graph backend, --device v100-torch",
                VOLTA_INSTALL),
    ArchSupport("Turing", (7, 5), (7, 5), "T4", (10, 0), None, (12, 13), False,
                "supported by TensorRT 10 and 11", INSTALL[12]),
    ArchSupport("Ampere/Ada", (8, 0), (8, 9), "A100, A10, L4", (10, 0), None, (12, 13), True,
                "supported by TensorRT 10 and 11", INSTALL[12]),
    ArchSupport("Hopper", (9, 0), (9, 0), "H100, H200", (10, 0), None, (12, 13), True,
                "supported by TensorRT 10 and 11", INSTALL[12]),
    ArchSupport("Blackwell", (10, 0), (12, 9), "B200, RTX 5090", (10, 8), None, (12, 13), True,
                "TensorRT supports Blackwell from 10.8 (CUDA 12.8)", INSTALL[13]),
)

#: CUDA major of each TensorRT major's wheels: TensorRT 10 ships cu12 (and cu13 from 10.13), 11 cu13.
TRT_CUDA_MAJORS = {10: (12, 13), 11: (13,)}

#: GPU model names in descriptors -> compute capability (to check before a GPU is queried).
GPU_MODELS: dict[str, Version] = {
    "V100": (7, 0), "T4": (7, 5), "A100": (8, 0), "A10": (8, 6), "L4": (8, 9), "H100": (9, 0),
    "H200": (9, 0), "B200": (10, 0),
}


def parse_version(text: str) -> Version:
    """``"10.4.0.26"`` -> ``(10, 4)``; ``"12"`` -> ``(12, 0)``."""
    m = re.match(r"\s*(\d+)(?:\.(\d+))?", str(text))
    if not m:
        raise SgnasError(f"cannot parse the version {text!r}")
    return int(m.group(1)), int(m.group(2) or 0)


def arch_for(cc: Version) -> ArchSupport | None:
    """The matrix row of compute capability ``cc`` (None below Volta: TensorRT 10 needs SM 7.0+)."""
    return next((row for row in MATRIX if row.covers(cc)), None)


def cc_of_model(gpu_model: str | None) -> Version | None:
    """Compute capability of a descriptor's ``gpu_model`` when it is a known GPU."""
    if not gpu_model:
        return None
    return GPU_MODELS.get(gpu_model.strip().upper())


def trt_extra(gpu_model: str | None) -> str:
    """The pip extra that installs a TensorRT for ``gpu_model`` (``trt-volta`` for a V100, else ``trt``)."""
    cc = cc_of_model(gpu_model)
    row = arch_for(cc) if cc is not None else None
    return "trt-volta" if row is not None and row.arch == "Volta" else "trt"


def check_tensorrt(cc: Version, trt_version: str, precision: str, where: str,
                   trt_cuda: int | None = None, binding_cuda: int | None = None) -> ArchSupport:
    """Refuse TensorRT ``trt_version`` for a GPU of compute capability ``cc``; return its matrix row.

    ``trt_cuda`` is the CUDA major of the TensorRT wheel, ``binding_cuda`` that of the CUDA binding
    (None where unknown): they must agree and the architecture must run on it. ``precision`` ``tf32``
    is refused on a GPU without TF32 (before Ampere).
    """
    ccs = f"{cc[0]}.{cc[1]}"
    row = arch_for(cc)
    if row is None:
        raise SgnasError(f"{where}: a GPU of compute capability {ccs} is not supported by TensorRT 10 "
                         "or newer (needs 7.0+); use a torch device (backend: torch)")
    trt = parse_version(trt_version)
    label = f"{where}: {row.arch} (compute capability {ccs}, e.g. {row.examples})"
    if trt < row.trt_min or (row.trt_max is not None and trt > row.trt_max):
        raise SgnasError(f"{label} needs TensorRT {row.trt_range()}, found {trt_version} "
                         f"({row.reason}): {row.install}")
    wheel = TRT_CUDA_MAJORS.get(trt[0], (12, 13))
    if trt_cuda is not None and trt_cuda not in wheel:
        raise SgnasError(f"{where}: TensorRT {trt_version} has no CUDA {trt_cuda} build: "
                         f"{INSTALL[wheel[0]]}")
    if trt_cuda is not None and binding_cuda is not None and trt_cuda != binding_cuda:
        raise SgnasError(f"{where}: TensorRT {trt_version} is built for CUDA {trt_cuda} but the CUDA "
                         f"binding loads CUDA {binding_cuda}: pip install "
                         f"'cuda-python>={trt_cuda},<{trt_cuda + 1}'")
    cuda = trt_cuda if trt_cuda is not None else binding_cuda
    if cuda is not None and cuda not in row.cuda_majors:
        raise SgnasError(f"{label} needs CUDA {' or '.join(map(str, row.cuda_majors))}, found CUDA "
                         f"{cuda} ({row.reason}): {row.install}")
    if precision == "tf32" and not row.tf32:
        raise SgnasError(f"{label} has no TF32; use precision fp32 or fp16")
    return row


def check_precision(cc: Version, precision: str, where: str) -> None:
    """Refuse ``tf32`` on a GPU without TF32 (any backend)."""
    row = arch_for(cc)
    if precision == "tf32" and (row is None or not row.tf32):
        raise SgnasError(f"{where}: compute capability {cc[0]}.{cc[1]} has no TF32; "
                         "use precision fp32 or fp16")


def markdown_table() -> str:
    """The matrix as the README's Markdown table."""
    lines = ["| Compute capability | Architecture | Examples | TensorRT | CUDA | TF32 | Why |",
             "|---|---|---|---|---|---|---|"]
    for r in MATRIX:
        cc = f"{r.cc_min[0]}.{r.cc_min[1]}" + (
            f"-{r.cc_max[0]}.{r.cc_max[1]}" if r.cc_max != r.cc_min else "")
        lines.append(f"| {cc} | {r.arch} | {r.examples} | {r.trt_range()} | "
                     f"{', '.join(map(str, r.cuda_majors))} | {'yes' if r.tf32 else 'no'} | {r.reason} |")
    return "\n".join(lines)
