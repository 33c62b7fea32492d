"""The machine's own fp32 peak, from its CPU's flags and clock, and the cores we may use."""

import os

import pytest

from zoo.anatomy import training_cost
from zoo.machine import cgroup_cpu_quota, cpu_peak, usable_cores

NO_FREQ = "/nonexistent/cpuinfo_max_freq"


def info(model, flags, mhz=None, key="flags"):
    return f"processor\t: 0\nmodel name\t: {model}\n" + (f"cpu MHz\t\t: {mhz}\n" if mhz else "") + \
        f"{key}\t\t: {flags}\n"


@pytest.mark.unit
@pytest.mark.parametrize("text, machine, isa, gflops, guess", [
    (info("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "fpu sse2 avx avx2 fma avx512f"), "x86_64",
     "AVX-512", 4 * 2.5 * 16 * 2 * 2, None),
    (info("AMD EPYC", "sse2 avx avx2 fma", mhz="2450.000"), "x86_64", "AVX2+FMA", 4 * 2.45 * 8 * 2 * 2, "cpu MHz"),
    (info("Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz", "sse2 avx"), "x86_64", "AVX", 4 * 2.6 * 8 * 1 * 2, None),
    (info("", "fp asimd evtstrm", key="Features"), "aarch64", "NEON", None, "no clock"),
    ("", "riscv64", "unknown", None, "unknown CPU"),
])
def test_the_peak_rests_on_the_cpus_own_flags(text, machine, isa, gflops, guess, tmp_path):
    peak = cpu_peak(text, cores=4, machine=machine, cpufreq_max=tmp_path / "absent")
    assert peak.isa == isa
    if gflops is None:
        assert peak.gflops is None and "unknown" in peak.derivation  # no number where it would be a guess
    else:
        assert peak.gflops == pytest.approx(gflops)
        assert f"{peak.lanes} fp32 lanes ({isa})" in peak.derivation
    assert (peak.guess is None) == (guess is None) and (guess is None or guess in peak.guess)


@pytest.mark.unit
def test_the_rated_clock_wins_over_the_current_one(tmp_path):
    freq = tmp_path / "cpuinfo_max_freq"
    freq.write_text("3500000\n")  # kHz
    peak = cpu_peak(info("AMD EPYC", "avx2 fma", mhz="1996.0"), cores=2, machine="x86_64", cpufreq_max=freq)
    assert peak.ghz == 3.5 and peak.guess is None


@pytest.mark.unit
def test_a_cgroup_quota_caps_the_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)  # never more than the machine has


@pytest.mark.unit
def test_training_cost_is_six_flops_per_mac_per_image():
    cost = training_cost(macs=1_000_000, images=50_000, epoch_seconds=[10.0, 5.0], peak_gflops=100.0)
    assert cost["training_flops"] == 6 * 1_000_000 * 50_000 * 2
    assert cost["training_tflop"] == pytest.approx(0.6)
    assert cost["gflops_per_second"] == pytest.approx([30.0, 60.0])
    assert cost["share_of_peak"] == pytest.approx([0.3, 0.6])
    assert training_cost(1, 1, [1.0], None)["share_of_peak"] is None


@pytest.mark.unit
def test_a_cpu_with_bf16_arithmetic_reports_its_bf16_peak_too(tmp_path):
    """AVX512-BF16 doubles the fp32 peak for bf16; AMX tiles do 1,024 bf16 multiply-adds per cycle
    per core. Runs with --precision mixed_bfloat16 measure their share against it."""
    amx = cpu_peak(info("Intel(R) Xeon(R) Platinum 8480+ @ 2.00GHz", "avx2 fma avx512f avx512_bf16 amx_bf16"),
                   cores=2, machine="x86_64", cpufreq_max=tmp_path / "absent")
    assert amx.gflops == pytest.approx(2 * 2.0 * 16 * 2 * 2)
    assert amx.bf16_gflops == pytest.approx(2 * 2.0 * 2048) and "AMX" in amx.bf16_derivation
    zen4 = cpu_peak(info("AMD EPYC 9654 @ 2.40GHz", "avx2 fma avx512f avx512_bf16"), cores=2, machine="x86_64",
                    cpufreq_max=tmp_path / "absent")
    assert zen4.bf16_gflops == pytest.approx(2 * zen4.gflops) and "VDPBF16PS" in zen4.bf16_derivation
    plain = cpu_peak(info("AMD EPYC", "avx2 fma", mhz="2450.000"), cores=2, machine="x86_64",
                     cpufreq_max=tmp_path / "absent")
    assert plain.bf16_gflops is None and plain.to_dict()["bf16_gflops"] is None
