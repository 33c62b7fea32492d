"""What this process may use of the machine it runs on: cores, and the CPU's fp32 peak.

The peak is what a CPU's vector units could do at most — cores × GHz × fp32 lanes ×
2 (a fused multiply-add is two operations) × FMA units per core — read from the CPU's
own flags, so "share of peak" means something on an AVX2 laptop as on an AVX-512
server. Where a factor cannot be read (the number of FMA units, an SVE vector length,
the clock of a CPU that does not report it), the figure is marked a guess and says why.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path


def usable_cores() -> int:
    """The CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota
    (a container limited to 2 CPUs on a 64-core host sees 64 in ``os.cpu_count()``)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota)) if quota else cores)


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs granted by the cgroup v2 ``cpu.max`` (or v1 ``cfs_quota_us``) file; None when unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class CpuPeak:
    """The CPU, the flags the peak rests on, and the peak itself (None when unknowable)."""

    model: str
    isa: str                 # "AVX-512", "AVX2+FMA", "AVX", "SSE", "NEON", "SVE", or "unknown"
    flags_used: tuple[str, ...]
    cores: int
    ghz: float | None
    lanes: int | None        # fp32 values per vector register
    fma_units: int           # assumed: 2 on every x86 core since Haswell/Zen 2, and on big ARM cores
    gflops: float | None
    derivation: str
    guess: str | None = None  # why the figure is not certain, if it is not
    # The bfloat16 peak, where the flags show bf16 arithmetic (AVX512-BF16, AMX): what runs
    # with --precision mixed_bfloat16 measure their share against. None elsewhere.
    bf16_gflops: float | None = None
    bf16_derivation: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flags_used"] = list(self.flags_used)
        return data


# (isa, fp32 lanes, flags that must all be present, FMA) — first match wins
_X86 = (("AVX-512", 16, ("avx512f",), True), ("AVX2+FMA", 8, ("avx2", "fma"), True),
        ("AVX", 8, ("avx",), False), ("SSE", 4, ("sse2",), False))


CPUFREQ_MAX = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")


def cpu_peak(cpuinfo: str | None = None, cores: int | None = None, machine: str | None = None,
             cpufreq_max: Path = CPUFREQ_MAX) -> CpuPeak:
    """The fp32 peak of the cores this process may use, from /proc/cpuinfo's flags and clock."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    cores = cores or usable_cores()
    machine = machine or platform.machine()
    field = lambda name: (re.search(rf"^{name}\s*:\s*(.*)$", cpuinfo, re.M | re.I) or [None, ""])[1].strip()  # noqa: E731
    model = field("model name") or field("Hardware") or field("CPU part") or platform.processor() or machine
    flags = set((field("flags") or field("Features")).split())
    guesses = []

    isa, lanes, used, fma = "unknown", None, (), False
    for name, width, needed, has_fma in _X86:
        if set(needed) <= flags:
            isa, lanes, used, fma = name, width, needed, has_fma
            break
    else:
        if "sve" in flags:
            isa, lanes, used, fma = "SVE", 4, ("sve",), True
            guesses.append("SVE's vector length is not in the flags: counted as 128-bit")
        elif "asimd" in flags or machine in ("arm64", "aarch64"):
            isa, lanes, used, fma = "NEON", 4, ("asimd",) if "asimd" in flags else (), True
    if lanes is None:
        return CpuPeak(model, isa, (), cores, None, None, 2, None,
                       f"unknown: no vector flags this formula knows ({machine})", "unknown CPU")

    named = re.search(r"@\s*([\d.]+)\s*GHz", model)
    max_khz = _read(cpufreq_max)
    mhz = field("cpu MHz")
    if named:
        ghz = float(named.group(1))
    elif max_khz:
        ghz = max_khz / 1e6
    elif mhz:
        ghz = float(mhz) / 1000
        guesses.append("clock from 'cpu MHz', the current speed, not the rated one")
    else:
        return CpuPeak(model, isa, used, cores, None, lanes, 2, None,
                       f"unknown: the CPU reports no clock ({isa})", "no clock")
    fma_units = 2
    flops_per_cycle = lanes * (2 if fma else 1) * fma_units
    gflops = cores * ghz * flops_per_cycle
    derivation = (f"{cores} core{'s' * (cores != 1)} × {ghz:.2f} GHz × {lanes} fp32 lanes ({isa}) × "
                  + ("2 (FMA)" if fma else "1 (no FMA)") + f" × {fma_units} vector units (assumed)")
    bf16, bf16_derivation = _bf16_peak(flags, cores, ghz, gflops)
    return CpuPeak(model, isa, used, cores, round(ghz, 3), lanes, fma_units, round(gflops, 1), derivation,
                   "; ".join(guesses) or None, bf16, bf16_derivation)


# AMX (Sapphire Rapids and later): a TDPBF16PS tile multiply does 1,024 bf16 multiply-adds per
# cycle per core (Intel's figure), 2,048 FLOPs. AVX512-BF16's VDPBF16PS does two bf16 products
# per fp32 lane where an FMA does one: twice the fp32 peak on the same units.
AMX_BF16_FLOPS_PER_CYCLE = 2048


def _bf16_peak(flags: set, cores: int, ghz: float, fp32_gflops: float) -> tuple[float | None, str | None]:
    if "amx_bf16" in flags:
        return (round(cores * ghz * AMX_BF16_FLOPS_PER_CYCLE, 1),
                f"{cores} core{'s' * (cores != 1)} × {ghz:.2f} GHz × {AMX_BF16_FLOPS_PER_CYCLE:,} bf16 FLOPs per "
                f"cycle (AMX: 1,024 multiply-adds, Intel's figure)")
    if "avx512_bf16" in flags:
        return (round(2 * fp32_gflops, 1),
                "2 × the fp32 peak (AVX512-BF16: VDPBF16PS does two bf16 products per fp32 lane)")
    return None, None


def _read(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=1)
def this_cpu() -> CpuPeak:
    return cpu_peak()
