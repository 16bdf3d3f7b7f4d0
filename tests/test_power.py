"""Power during the timed loop: tegrastats (Nano, Xavier, Orin formats), energy arithmetic, RAPL, jetson_clocks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pocketgan.core.errors import PocketganError
from pocketgan.runtime.power import Measurement, locked_clocks, open_meter
from pocketgan.runtime.power.energy import EnergyReading, power_records
from pocketgan.runtime.power.jetson import clocks_state, tegrastats_reading, total_rails
from pocketgan.runtime.power.rapl import RaplMeter, RaplUnavailable, find_zones, wrapped_delta
from pocketgan.runtime.power.tegrastats import parse_line

from conftest import FAST

DATA = Path(__file__).parent / "data" / "tegrastats"


def recorded(board: str) -> list[str]:
    return DATA.joinpath(f"{board}.txt").read_text().splitlines()


# ------------------------------------------------------------------------------------------- tegrastats


def test_nano_lines_give_the_pom_rails_gpu_and_emc():
    idle, busy = (parse_line(line) for line in recorded("nano"))
    assert idle.rails_mw == {"POM_5V_IN": 2393, "POM_5V_GPU": 0, "POM_5V_CPU": 394}  # instantaneous, not average
    assert busy.rails_mw == {"POM_5V_IN": 4993, "POM_5V_GPU": 2011, "POM_5V_CPU": 1180}
    assert (busy.gpu_load_pct, busy.gpu_freq_mhz, busy.emc_load_pct, busy.emc_freq_mhz) == (99, 921, 12, 1600)
    assert busy.cpu_load_pct == [35, 28, 31, 40] and busy.ram_used_mb == 1218
    assert busy.temperatures_c["GPU"] == 28.0 and busy.temperatures_c["thermal"] == 28.75
    assert total_rails(list(busy.rails_mw)) == ("POM_5V_IN",)  # the module's input rail is the whole


def test_xavier_lines_have_bare_rail_names_and_cores_off():
    idle, busy = (parse_line(line) for line in recorded("xavier"))
    assert busy.rails_mw == {"GPU": 4976, "CPU": 620, "SOC": 2173, "CV": 0, "VDDRQ": 1398, "SYS5V": 2568}
    assert "RAM" not in busy.rails_mw and "SWAP" not in busy.rails_mw
    assert busy.cpu_load_pct == [22, 15, 9, 30, None, None, None, None]  # "off" cores
    assert (busy.gpu_load_pct, busy.gpu_freq_mhz, busy.emc_freq_mhz) == (98, 1377, 2133)
    assert idle.temperatures_c["Tboard"] == 30.0 and idle.ram_used_mb == 2712
    assert total_rails(list(busy.rails_mw)) == ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V")  # no input rail: sum


def test_orin_lines_have_mw_units_two_gpcs_and_sensors_off():
    idle, busy = (parse_line(line) for line in recorded("orin"))
    assert idle.rails_mw == {"VDD_GPU_SOC": 3215, "VDD_CPU_CV": 802, "VIN_SYS_5V0": 3530, "VDDQ_VDD2_1V8AO": 601}
    assert "GPU" not in idle.temperatures_c and "CV0" not in idle.temperatures_c  # -256C: sensor off
    assert busy.temperatures_c["GPU"] == 48.5 and busy.temperatures_c["tj"] == 48.5
    assert busy.gpu_freq_mhz == 1298.0  # GR3D_FREQ 99%@[1300,1296]: the mean of the two GPCs
    assert (busy.emc_load_pct, busy.emc_freq_mhz, busy.ram_used_mb) == (21, 3199, 2470)
    assert len(busy.cpu_load_pct) == 12 and busy.cpu_load_pct[:2] == [12, 8]
    (nano,) = (parse_line(line) for line in recorded("orin_nano"))
    assert nano.rails_mw == {"VDD_IN": 4747, "VDD_CPU_GPU_CV": 1101, "VDD_SOC": 1417}
    assert total_rails(list(nano.rails_mw)) == ("VDD_IN",) and nano.gpu_freq_mhz is None


# ------------------------------------------------------------------------------------------- energy


def test_energy_per_frame_from_tegrastats_samples_by_hand():
    # Nano: POM_5V_IN reads 2393 then 4993 mW -> 3693 mW on average; held 2.0 s -> 7386 mJ; 100 frames -> 73.86 mJ
    samples = [parse_line(line) for line in recorded("nano")]
    reading = tegrastats_reading(samples, elapsed_s=2.0, interval_ms=100)
    assert reading.total == ("POM_5V_IN",)
    assert reading.total_mj == pytest.approx(7386.0) and reading.avg_power_mw() == pytest.approx(3693.0)
    assert reading.avg_power_mw("POM_5V_GPU") == pytest.approx(1005.5)  # (0 + 2011) / 2
    (record,) = power_records(reading, frames=[100], busy_ms=[1500.0])
    assert record["energy_per_frame_mj"] == pytest.approx(73.86) and record["share"] == 1.0
    assert record["source"] == "tegrastats" and record["samples"] == 2 and record["interval_ms"] == 100
    assert record["gpu_freq_mhz"] == pytest.approx(498.5)  # (76 + 921) / 2
    assert record["max_temperatures_c"]["GPU"] == 28.0


def test_orin_agx_total_is_the_sum_of_its_rails():
    samples = [parse_line(line) for line in recorded("orin")]
    reading = tegrastats_reading(samples, elapsed_s=0.5, interval_ms=100)
    # mean of (3215+802+3530+601 = 8148) and (11247+1605+4641+1002 = 18495) = 13321.5 mW; x 0.5 s = 6660.75 mJ
    assert reading.avg_power_mw() == pytest.approx(13321.5) and reading.total_mj == pytest.approx(6660.75)


def test_interleaved_artifacts_share_the_loop_energy_by_their_time():
    reading = EnergyReading("rapl", 4.0, {"package-0": 8000.0, "package-0/core": 5000.0}, ("package-0",))
    first, second = power_records(reading, frames=[30, 20], busy_ms=[3000.0, 1000.0])
    assert (first["share"], second["share"]) == (0.75, 0.25)
    assert (first["energy_mj"], second["energy_mj"]) == (6000.0, 2000.0)  # the core sub-zone is not added
    assert (first["energy_per_frame_mj"], second["energy_per_frame_mj"]) == (200.0, 100.0)
    assert first["avg_power_mw"] == 2000.0 and first["domains"]["package-0/core"]["avg_power_mw"] == 1250.0
    assert Measurement(reason="no RAPL").records([3], [1.0]) == [{"source": None, "reason": "no RAPL"}]


# ------------------------------------------------------------------------------------------- RAPL


def fake_powercap(root: Path, zones: dict[str, tuple[str, int, int]]) -> Path:
    """``{"intel-rapl:0": ("package-0", energy_uj, max_range_uj)}`` as a powercap tree."""
    for zone, (name, energy, max_range) in zones.items():
        d = root / zone
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_uj(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_rapl_counters_that_wrap_are_unwrapped(tmp_path):
    assert wrapped_delta(900, 100, 1000) == 200 and wrapped_delta(100, 900, 1000) == 800
    root = fake_powercap(tmp_path, {
        "intel-rapl:0": ("package-0", 900_000, 1_000_000),
        "intel-rapl:0:0": ("core", 10_000, 1_000_000),
        "intel-rapl:1": ("package-1", 0, 2_000_000),
    })  # fmt: skip
    meter = RaplMeter(find_zones(root), poll_s=3600)  # no background poll during the test: polls by hand
    meter.start()
    set_uj(root, "intel-rapl:0", 500_000)  # wrapped once: +600 000 uJ
    set_uj(root, "intel-rapl:1", 1_500_000)
    meter.poll()
    set_uj(root, "intel-rapl:0", 400_000)  # wrapped a second time: +900 000 uJ (seen because it was polled)
    set_uj(root, "intel-rapl:0:0", 60_000)
    set_uj(root, "intel-rapl:1", 500_000)  # +1 000 000 uJ over its 2 000 000 range
    reading = meter.stop()
    assert reading.energy_mj == {"package-0": 1500.0, "package-0/core": 50.0, "package-1": 2500.0}
    assert reading.total == ("package-0", "package-1") and reading.total_mj == 4000.0


def test_rapl_absent_or_unreadable_is_a_reason(tmp_path, monkeypatch):
    with pytest.raises(RaplUnavailable, match="does not exist"):
        find_zones(tmp_path / "none")
    root = fake_powercap(tmp_path / "pc", {"intel-rapl:0": ("package-0", 5, 100)})
    monkeypatch.setattr("pocketgan.runtime.power.rapl.RaplZone.read_uj",
                        lambda self: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))  # fmt: skip
    reason = open_meter(powercap=root)
    assert isinstance(reason, str) and "permission denied" in reason and "root" in reason


def test_bench_json_carries_rapl_energy_or_why_not(bench, artifacts, tmp_path, monkeypatch):
    root = fake_powercap(tmp_path / "powercap", {"intel-rapl:0": ("package-0", 1000, 10**9)})
    monkeypatch.setattr("pocketgan.runtime.power.rapl.POWERCAP", root)
    run = bench("pocketgan-bench", artifacts.static, *FAST)
    assert run.code == 0, run.err
    (result,) = run.results
    power = result["power"]  # the fake counter never moves: 0 mJ, measured from the fake tree
    assert (power["source"], power["total"], power["energy_per_frame_mj"]) == ("rapl", ["package-0"], 0.0)
    assert power["frames"] == result["iterations"] and "energy/frame mJ" in run.out
    run = bench("pocketgan-bench", artifacts.static, artifacts.static, *FAST, "--block-ms", "40", "--duration", "0.4")
    for result in run.results:  # interleaved: each turn after the first opens with an untimed lead-in call
        assert result["lead_in_iterations"] >= 1
        assert result["power"]["frames"] == result["iterations"] + result["lead_in_iterations"]
    monkeypatch.setattr("pocketgan.runtime.power.rapl.POWERCAP", tmp_path / "absent")
    run = bench("pocketgan-bench", artifacts.static, *FAST)
    (result,) = run.results
    assert result["power"]["source"] is None and "does not exist" in result["power"]["reason"]
    assert "power: not measured" in run.out and "energy/frame" not in run.out
    run = bench("pocketgan-bench", artifacts.static, *FAST, "--no-power")
    assert run.results[0]["power"] == {"source": None, "reason": "power not measured (--no-power)"}


# ------------------------------------------------------------------------------------------- Jetson tools

ORIN_SHOW = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-1
cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=1510400 IdleStates: WFI=1 c7=1
cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=729600 IdleStates: WFI=1 c7=1
cpu2: Online=0 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=729600 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=0
FAN Dynamic Speed control=active hwmon3_pwm1=75
NV Power Mode: MAXN
"""
ORIN_LOCKED = (ORIN_SHOW.replace("MinFreq=729600", "MinFreq=2201600").replace("MinFreq=306000000", "MinFreq=1300500000")
               .replace("FreqOverride=0", "FreqOverride=1"))  # fmt: skip


def test_jetson_clocks_show_says_whether_clocks_are_locked():
    free = clocks_state(ORIN_SHOW)
    assert free["locked"] is False
    assert free["gpu_mhz"] == {"min": 306.0, "max": 1300.5, "current": 306.0}
    assert free["emc_mhz"]["max"] == 3199.0 and set(free["cpu_mhz"]) == {"cpu0", "cpu1"}  # cpu2 is offline
    assert free["cpu_mhz"]["cpu0"] == {"min": 729.6, "max": 2201.6, "current": 1510.4}
    assert clocks_state(ORIN_LOCKED)["locked"] is True
    assert clocks_state(ORIN_LOCKED.replace("FreqOverride=1", "FreqOverride=0"))["locked"] is False  # EMC not pinned


def fake_tool(bin_dir: Path, name: str, body: str) -> Path:
    """An executable shell script ``bin_dir/name``."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


@pytest.fixture
def jetson_tools(tmp_path, monkeypatch):
    """Fake ``jetson_clocks`` (logs its arguments; ``FAIL_LOCK=1`` makes the lock fail), ``nvpmodel`` and
    ``tegrastats`` (a constant Orin line every 20 ms) first on PATH; returns the log file."""
    log = tmp_path / "jetson_clocks.log"
    bin_dir = tmp_path / "bin"
    (tmp_path / "free.txt").write_text(ORIN_SHOW)
    (tmp_path / "locked.txt").write_text(ORIN_LOCKED)
    state = tmp_path / "state"
    fake_tool(bin_dir, "jetson_clocks", f"""echo "$*" >> {log}
case "$1" in
  --show) if [ -f {state} ]; then cat {tmp_path}/locked.txt; else cat {tmp_path}/free.txt; fi ;;
  --store) echo stored > "$2" ;;
  --restore) test -f "$2" || {{ echo "no such file $2" >&2; exit 1; }}; rm -f {state} ;;
  "") if [ -n "$FAIL_LOCK" ]; then echo "cannot write cpufreq" >&2; exit 1; fi; touch {state} ;;
esac
""")
    fake_tool(bin_dir, "nvpmodel", 'echo "NV Power Mode: MAXN"\necho 0\n')
    line = ("RAM 2386/30593MB (lfb 6862x4MB) CPU [0%@729,off] EMC_FREQ 0%@2133 GR3D_FREQ 50%@[612,612] GPU@40.5C "
            "VDD_GPU_SOC 3000mW/3000mW VDD_CPU_CV 1000mW/1000mW VIN_SYS_5V0 2000mW/2000mW VDDQ_VDD2_1V8AO 500mW/500mW")
    fake_tool(bin_dir, "tegrastats", f'while true; do echo "{line}"; sleep 0.02; done\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("pocketgan.runtime.power.jetson.os.geteuid", lambda: 0)  # as root: no sudo in front
    return log


def logged(log: Path) -> list[str]:
    return log.read_text().splitlines()


def test_lock_clocks_stores_locks_and_restores_even_on_error(jetson_tools):
    with locked_clocks():
        stored = logged(jetson_tools)
        assert stored[0].startswith("--store ") and stored[1:] == [""]  # store, then lock
    assert logged(jetson_tools)[2] == f"--restore {stored[0].split(' ', 1)[1]}"  # the same file
    jetson_tools.unlink()
    with pytest.raises(RuntimeError, match="the benchmark failed"), locked_clocks():
        raise RuntimeError("the benchmark failed")
    assert [line.split(" ")[0] for line in logged(jetson_tools)] == ["--store", "", "--restore"]


def test_a_failed_lock_still_restores_and_is_one_line(jetson_tools, monkeypatch):
    monkeypatch.setenv("FAIL_LOCK", "1")
    with pytest.raises(PocketganError, match="jetson_clocks failed: cannot write cpufreq"), locked_clocks():
        pass
    assert [line.split(" ")[0] for line in logged(jetson_tools)] == ["--store", "", "--restore"]


def test_not_root_the_clock_tools_go_through_sudo_n(jetson_tools, tmp_path, monkeypatch):
    fake_tool(tmp_path / "bin", "sudo", f'echo "sudo $*" >> {jetson_tools}\nshift\nexec "$@"\n')
    monkeypatch.setattr("pocketgan.runtime.power.jetson.os.geteuid", lambda: 1000)
    with locked_clocks():
        pass
    assert [line.split(" /")[0] for line in logged(jetson_tools)] == [  # sudo's log line, then the tool's
        "sudo -n jetson_clocks --store", "--store", "sudo -n jetson_clocks", "", "sudo -n jetson_clocks --restore",
        "--restore"]  # fmt: skip


def test_lock_clocks_without_jetson_clocks_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PocketganError, match="--lock-clocks needs jetson_clocks"), locked_clocks():
        pass


def test_bench_on_a_jetson_records_rails_power_mode_and_clocks(bench, artifacts, jetson_tools):
    run = bench("pocketgan-bench", artifacts.static, "--lock-clocks", *FAST[2:], "--duration", "0.4")
    assert run.code == 0, run.err
    (result,) = run.results
    power = result["power"]
    assert power["source"] == "tegrastats" and power["samples"] >= 5
    assert power["avg_power_mw"] == 6500.0  # 3000 + 1000 + 2000 + 500 mW in every line, AGX Orin: the sum
    assert power["energy_per_frame_mj"] == pytest.approx(6500.0 * power["elapsed_s"] / result["iterations"])
    assert power["gpu_freq_mhz"] == 612.0 and power["max_temperatures_c"] == {"GPU": 40.5}
    jetson = result["host"]["jetson"]
    assert jetson["power_mode"] == {"name": "MAXN", "id": 0}
    assert jetson["clocks"]["locked"] is True and jetson["clocks"]["gpu_mhz"]["min"] == 1300.5  # during the run
    assert [line.split(" ")[0] for line in logged(jetson_tools)] == ["--store", "", "--show", "--restore"]
    assert clocks_state()["locked"] is False  # restored after it
    assert "energy/frame mJ" in run.out and "power: tegrastats over the timed loop (total: VDD_GPU_SOC + " in run.out


@pytest.mark.jetson
@pytest.mark.skipif(not os.environ.get("POCKETGAN_JETSON"), reason="needs a Jetson with TensorRT: set "
                    "POCKETGAN_JETSON=user@jetson and POCKETGAN_ENGINE=model.engine (built on that Jetson)")
def test_a_tensorrt_engine_on_the_jetson(bench):
    engine = os.environ["POCKETGAN_ENGINE"]
    run = bench("pocketgan-bench", engine, "--remote", os.environ["POCKETGAN_JETSON"], "--lock-clocks", "--duration", "3")
    assert run.code == 0, run.err
    (result,) = run.results
    assert result["backend"] == "tensorrt" and result["power"]["source"] == "tegrastats"
    assert result["host"]["jetson"]["clocks"]["locked"] is True and result["power"]["energy_per_frame_mj"] > 0
