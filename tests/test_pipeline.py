"""`pocketgan run` end to end on a tiny recipe: every stage, the report, the cache and the errors."""

from __future__ import annotations

import json

import pytest

from pocketgan.core.errors import PocketganError
from pocketgan.recipe import load_recipe

TINY = [
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


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tiny_recipe_runs_every_stage_and_reuses_the_cache(cli, cache, tmp_path):
    out = tmp_path / "run"
    first = cli("run", "--out", out, *TINY)
    assert first.code == 0, first.err
    results = json.loads((out / "results.json").read_text())
    names = [row["model"] for row in results["models"]]
    assert names == ["teacher", "omgd-ngf8", "kd-ngf8", "kd-ngf8-pruned"]
    teacher, *students = results["models"]
    assert teacher["compression"] == 0
    for row in students:
        assert 0 < row["compression"] < 1 and row["macs"] < teacher["macs"]
        assert row["latency_p50_ms"] > 0 and row["fps"] > 0
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
    assert "pocketgan distill --method omgd" in report and f"pocketgan run {out / 'recipe.yaml'}" in report
    assert load_recipe(out / "recipe.yaml")["teacher"]["steps"] == 3  # the saved recipe reproduces the run

    second = cli("run", "--out", tmp_path / "again", *TINY)
    assert second.code == 0, second.err
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert set(again["cached_stages"]) >= {"dataset", "teacher", "feature network", "omgd-ngf8", "kd-ngf8"}
    assert again["models"][1]["macs"] == results["models"][1]["macs"]

    changed = cli("run", "--out", tmp_path / "changed", *TINY, "students.1.steps=3")
    assert changed.code == 0, changed.err
    cached = json.loads((tmp_path / "changed" / "results.json").read_text())["cached_stages"]
    assert "teacher" in cached and "omgd-ngf8" in cached and "kd-ngf8" not in cached


def test_a_failing_stage_is_named_with_the_way_to_resume(cli, cache, tmp_path):
    result = cli("run", "--out", tmp_path / "run", "data.path=" + str(tmp_path / "nowhere"))
    assert result.code == 2
    assert result.err.count("\n") == 1
    assert "stage data failed" in result.err and "re-run `pocketgan run --out" in result.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosection.key=1"], "unknown recipe section 'nosection'"),
        (["students.5.steps=1"], "no list item 5"),
        (["prune={student: nobody, ratio: 0.5}"], "prune.student must name one of the students"),
        (["size=8"], "size must be an integer >= 16"),
        (["missing.yaml"], "no such recipe file"),
        (["a.yaml", "b.yaml"], "at most one recipe file"),
    ],
)
def test_bad_recipes_give_one_line(cli, cache, tmp_path, args, message):
    result = cli("run", "--out", tmp_path / "run", *args)
    assert result.code == 2 and message in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_recipe_file_overrides_merge_over_the_defaults(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("teacher:\n  steps: 7\nstudents:\n  - {name: s, method: kd, student: 'mobile-resnet:ngf=4'}\n")
    recipe = load_recipe(path, ["teacher.batch=2"])
    assert recipe["teacher"]["steps"] == 7 and recipe["teacher"]["batch"] == 2
    assert recipe["teacher"]["arch"] == "resnet9:ngf=32"  # from the built-in recipe
    assert [s["name"] for s in recipe["students"]] == ["s"]  # lists replace
    path.write_text("[1, 2")
    with pytest.raises(PocketganError, match="not valid YAML"):
        load_recipe(path)


def test_print_recipe_shows_the_built_in_recipe(cli):
    result = cli("run", "--print-recipe")
    assert result.code == 0 and "students:" in result.out and "edges2photos" in result.out
