"""`pocketgan run` end to end on a tiny recipe: every stage, the report, the cache, code versions, --from/--only."""

from __future__ import annotations

import json

import pytest

from pocketgan.config import load_config

TINY = [
    "edges2photos",  # the recipe: students named omgd-ngf8 and kd-ngf8, as below
    "size=32",
    "data.count=12",
    "data.val_count=6",
    "teacher.arch=resnet9:ngf=4",
    "teacher.steps=3",
    "features.steps=10",
    "students.0.student=mobile-resnet:ngf=4",
    "students.0.steps=2",
    "students.0.options={deep_ngf: 4, deep_blocks: 2, ndf: 8}",
    "students.1.student=mobile-resnet:ngf=4",
    "students.1.steps=2",
    "prune={student: kd-ngf8, ratio: 0.5}",
    "bench.iterations=3",
    "bench.duration=0",
    "bench.warmup_ms=0",
    "bench.threads=1",
]

PLUGIN = '''"""A third-party distiller: plain KD under another name ({version})."""
from pocketgan.distill.kd import OutputKD


class PluginKD(OutputKD):
    pass
'''


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def results_of(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def test_tiny_recipe_runs_every_stage_and_reuses_the_cache(cli, cache, tmp_path):
    out = tmp_path / "run"
    first = cli("run", "-o", out, *TINY)
    assert first.code == 0, first.err
    results = results_of(out)
    names = [row["model"] for row in results["models"]]
    assert names == ["teacher", "omgd-ngf8", "kd-ngf8", "kd-ngf8-pruned"]
    teacher, *students = results["models"]
    assert teacher["compression"] == 0
    for row in students:
        assert 0 < row["compression"] < 1 and row["macs"] < teacher["macs"]
        assert row["latency_p50_ms"] > 0 and row["fps"] > 0
        assert 0 < row["compute_limit_pct"] and row["speedup_per_mac_reduction"] > 0  # against the teacher
        assert row["parity_max_abs"] < 1e-4
        assert row["fid"] is not None and row["psnr_teacher"] is not None
        assert row["feature_network"] == results["feature_network"] == "pocketgan-edges2photos"
    for name in names:
        assert (out / "models" / name / "model.safetensors").exists()
        assert (out / "onnx" / name / "model.onnx.json").exists()
    assert not list((out / "models").glob("*/train"))  # training state stays in the cache
    for picture in ("grid.png", "pareto.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| kd-ngf8-pruned | kd+prune |" in report
    assert "FID" in report and "pocketgan-edges2photos" in report
    assert "% of compute limit" in report and "speedup ÷ MAC reduction" in report
    assert teacher["speedup_per_mac_reduction"] == 1.0
    assert f"pocketgan run {out / 'recipe.yaml'} -o {out}" in report
    assert "pocketgan distill --teacher teacher --data data -o omgd-ngf8 --method omgd" in report
    assert load_config(out / "recipe.yaml") == load_config(TINY[0], TINY[1:])  # the saved recipe reproduces the run

    second = cli("run", "-o", tmp_path / "again", *TINY)
    assert second.code == 0, second.err
    again = results_of(tmp_path / "again")
    assert set(again["cached_stages"]) >= {"dataset", "teacher", "feature network", "omgd-ngf8", "kd-ngf8"}
    assert again["models"][1]["macs"] == results["models"][1]["macs"]

    changed = cli("run", "-o", tmp_path / "changed", *TINY, "students.1.steps=3")
    assert changed.code == 0, changed.err
    cached = results_of(tmp_path / "changed")["cached_stages"]
    assert "teacher" in cached and "omgd-ngf8" in cached and "kd-ngf8" not in cached

    check_partial_runs(cli, out, results)


def check_partial_runs(cli, out, full):
    """--from re-runs the later stages; --only reuses the run directory's results, and only for the same key."""
    opset = cli("run", "-o", out, *TINY, "export.opset=13", "--from", "export")
    assert opset.code == 0, opset.err
    after = results_of(out)
    assert set(after["stage_seconds"]) == {"export", "bench", "eval"}
    assert json.loads((out / "onnx" / "teacher" / "model.onnx.json").read_text())["opset"] == 13
    assert [row["macs"] for row in after["models"]] == [row["macs"] for row in full["models"]]
    assert [row["fid"] for row in after["models"]] == [row["fid"] for row in full["models"]]

    stale = cli("run", "-o", out, *TINY, "--only", "report")  # opset 17 again: the run holds opset 13's exports
    assert stale.code == 2 and stale.err.count("\n") == 1
    assert "stage export has no result for this configuration yet" in stale.err and "--from export" in stale.err

    (out / "results.json").unlink()
    report = cli("run", "-o", out, *TINY, "export.opset=13", "--only", "report")
    assert report.code == 0, report.err
    rebuilt = results_of(out)
    assert rebuilt["models"] == after["models"]  # every figure restored from RUN/stages.json
    assert set(rebuilt["stage_seconds"]) == set()  # nothing but the report ran


def test_a_distillers_code_version_is_part_of_its_students_keys(cli, cache, tmp_path, monkeypatch):
    from pocketgan.core.keys import code_version
    from pocketgan.distill.base import DISTILLERS

    plugin = tmp_path / "plugin_kd.py"
    plugin.write_text(PLUGIN.format(version="v1"))
    monkeypatch.syspath_prepend(str(tmp_path))
    from plugin_kd import PluginKD

    monkeypatch.setitem(DISTILLERS._entries, "plugin-kd", PluginKD)
    args = [*TINY, "students.1.method=plugin-kd", "prune=null"]
    assert cli("run", "-o", tmp_path / "first", *args).code == 0
    plugin.write_text(PLUGIN.format(version="v2"))  # an edit that changes nothing but the source
    code_version.cache_clear()
    second = cli("run", "-o", tmp_path / "second", *args)
    assert second.code == 0, second.err
    cached = results_of(tmp_path / "second")["cached_stages"]
    assert {"dataset", "teacher", "omgd-ngf8"} <= set(cached) and "kd-ngf8" not in cached


def test_the_feature_networks_content_key_is_recorded(cli, cache, tmp_path):
    from pocketgan.distill.features import load_feature_network
    from pocketgan.distill.features.domain import DomainConfig

    out = tmp_path / "run"
    one_student = "students=[{name: kd, method: kd, student: 'mobile-resnet:ngf=4', steps: 1}]"
    assert cli("run", "-o", out, *TINY, "prune=null", one_student).code == 0
    results = results_of(out)
    network = load_feature_network(None, data=results["dataset"], domain_config=DomainConfig(steps=10))
    assert results["feature_network_key"] == network.key


def test_a_failing_stage_is_named_with_the_way_to_resume(cli, cache, tmp_path):
    result = cli("run", "-o", tmp_path / "run", "data.path=" + str(tmp_path / "nowhere"))
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "stage data failed" in result.err and "re-run `pocketgan run -o" in result.err
