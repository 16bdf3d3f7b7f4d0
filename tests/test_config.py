"""The run configuration: a typed tree that refuses unknown keys at any depth, coerces once, round-trips
through YAML, is written before the first stage, and generates the report's stage-by-stage commands."""

from __future__ import annotations

import dataclasses
import shlex
import typing
from pathlib import Path

import pytest
import typer
import yaml

from pocketgan.config import PruneConfig, RunConfig, dump_config, load_config, parse_config
from pocketgan.core.errors import PocketganError
from pocketgan.pipeline.reproduce import FLAGS, STRUCTURAL, reproduce_commands


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def one_line_error(cli, tmp_path, *args):
    """Run ``pocketgan run`` and return its stderr, checking it failed with one line and wrote nothing."""
    result = cli("run", "-o", tmp_path / "run", *args)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert not (tmp_path / "run").exists()
    return result.err


# ------------------------------------------------------------------------------------------ unknown keys


@pytest.mark.parametrize(
    "args, message",
    [
        (["sedd=1"], "unknown recipe key sedd (did you mean seed?)"),
        (["teacher.stpes=3"], "unknown recipe key teacher.stpes (did you mean steps?)"),
        (["students.1.optoins={ndf: 8}"], "unknown recipe key students.1.optoins (did you mean options?)"),
        (["bench.warmup=0"], "unknown recipe key bench.warmup (did you mean warmup_ms?)"),
        (["prune={student: kd-sep24, ratio: 0.5, importanse: l2}"],
         "unknown recipe key prune.importanse (did you mean importance?)"),
        (["nosection.key=1"], "unknown recipe key nosection; the recipe takes name, seed, size, data"),
    ],
)  # fmt: skip
def test_unknown_keys_at_any_depth_name_the_closest_valid_one(cli, cache, tmp_path, args, message):
    assert message in one_line_error(cli, tmp_path, *args)


def test_unknown_keys_in_a_recipe_file_are_refused_too(cli, cache, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  builder: edges2photos\n  cont: 3\n")
    err = one_line_error(cli, tmp_path, recipe)
    assert "unknown recipe key data.cont (did you mean count?)" in err
    assert "data takes builder, path, count, val_count, options, direction" in err


# ------------------------------------------------------------------------------------------ types


def test_values_are_coerced_to_their_fields_types_once():
    assert yaml.safe_load("2e-4") == "2e-4"  # YAML 1.1 reads an exponent without a dot as a string
    config = load_config(None, ["teacher.lr=2e-4", "teacher.steps=1e3", "bench.warmup_ms=100", "name=123",
                                "prune={student: kd-sep24, target_macs: 800M}", "bench.threads=null",
                                "students.0.lr=1"])  # fmt: skip
    assert config.teacher.lr == 0.0002 and type(config.teacher.lr) is float
    assert config.teacher.steps == 1000 and type(config.teacher.steps) is int
    assert config.bench.warmup_ms == 100.0 and type(config.bench.warmup_ms) is float
    assert config.students[0].lr == 1.0 and type(config.students[0].lr) is float
    assert config.name == "123"
    assert config.prune == PruneConfig(student="kd-sep24", target_macs=800_000_000)
    assert config.bench.threads is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["teacher.steps=abc"], "teacher.steps must be an integer; got 'abc'"),
        (["students.0.steps=2.5"], "students.0.steps must be an integer; got 2.5"),
        (["size=true"], "size must be an integer; got True"),
        (["size=8"], "size must be an integer >= 16; got 8"),
        (["teacher.lr=0"], "teacher.lr must be a number > 0; got 0.0"),
        (["data.direction=AtoC"], "data.direction must be one of AtoB, BtoA; got 'AtoC' (did you mean AtoB?)"),
        (["teacher=3"], "teacher must be a mapping of method, arch, from, steps"),
        (["students={name: x}"], "students must be a list"),
        (["students.0.options=[1, 2]"], "students.0.options must be a mapping"),
        (["students=[{name: a, student: 'mobile-resnet:ngf=4'}]"], "students.0 needs method"),
        (["students=[]"], "at least one entry under students"),
        (["students.0.name=teacher"], "students.0.name 'teacher' is taken"),
        (["students.5.steps=1"], "no list item 5"),
        (["prune={student: nobody, ratio: 0.5}"], "prune.student must name one of the students"),
        (["prune={student: kd-sep24}"], "prune needs exactly one of ratio, target_rate, target_macs"),
        (["prune={student: kd-sep24, ratio: 1.5}"], "prune.ratio must be a number < 1; got 1.5"),
        (["missing.yaml"], "no such recipe file"),
        (["a.yaml", "b.yaml"], "at most one recipe file"),
    ],
)
def test_bad_values_give_one_line_naming_the_field(cli, cache, tmp_path, args, message):
    assert message in one_line_error(cli, tmp_path, *args)


@pytest.mark.parametrize(
    "args, messages",
    [
        (["students.0.method=omdg"], ("recipe: students.0.method: ", "'omdg' (did you mean omgd?)")),
        (["data.builder=edges2foto"], ("recipe: data: ", "'edges2foto' (did you mean edges2photos?)")),
        (["data.options={fotos: x}"], ("recipe: data: ", "no option 'fotos' (did you mean photos?)")),
        (["export.opset=5"], ("recipe: export: ", "opset must be between")),
    ],
)  # fmt: skip
def test_names_the_stages_look_up_are_checked_before_any_stage(cli, cache, tmp_path, args, messages):
    err = one_line_error(cli, tmp_path, *args)
    assert all(message in err for message in messages), err


@pytest.mark.parametrize("fmt", ["coreml", "tensorrt"])
def test_other_export_formats_are_refused_up_front_with_the_reason(cli, cache, tmp_path, fmt):
    err = one_line_error(cli, tmp_path, f"export.format={fmt}")
    assert f"export.format '{fmt}'" in err and "no runtime backend" in err and "run exports onnx, ort, openvino" in err
    assert f"pocketgan export MODEL --format FORMAT" in err


# ------------------------------------------------------------------------------------------ files and overrides


def test_a_recipe_file_merges_over_the_defaults_and_overrides_over_both(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("teacher:\n  steps: 7\nstudents:\n  - {name: s, method: kd, student: 'mobile-resnet:ngf=4'}\n")
    config = load_config(path, ["teacher.batch=2", "students.0.method=omgd"])
    assert config.teacher.steps == 7 and config.teacher.batch == 2
    assert config.teacher.arch == "unet64:ngf=32,upsample=resize"  # from the built-in recipe
    assert [(s.name, s.method, s.steps) for s in config.students] == [("s", "omgd", 500)]  # lists replace
    path.write_text("[1, 2")
    with pytest.raises(PocketganError, match="not valid YAML"):
        load_config(path)


def test_the_built_in_recipe_is_the_defaults_of_the_tree():
    config = load_config()
    assert config == RunConfig()
    assert (config.size, config.data.builder, config.teacher.arch, config.teacher.steps) == (
        64, "photos2stylized", "unet64:ngf=32,upsample=resize", 1200)  # fmt: skip
    assert config.teacher.options == {"lambda_ssim": 30.0}
    assert (config.teacher.lr, config.students[0].lr, config.teacher.batch, config.students[1].batch) == (
        1e-3, 1e-3, 4, 4)  # fmt: skip
    assert (config.bench.warmup_ms, config.bench.threads, config.export.opset, config.eval.batch) == (300.0, 2, 17, 16)
    student = "unet64:ngf=24,upsample=resize,block=separable"
    assert [(s.name, s.method, s.student) for s in config.students] == [
        ("omgd-sep24", "omgd", student), ("kd-sep24", "kd", student)]  # fmt: skip
    assert config.students[0].options["use_deep"] is False and config.students[1].options == {}
    assert load_config("stylized") == config  # the recipe's older name


def test_the_edges2photos_recipe_is_the_former_default_and_drops_the_teachers_ssim_term():
    config = load_config("edges2photos")
    assert (config.data.builder, config.teacher.arch, config.teacher.steps, config.teacher.lr) == (
        "edges2photos", "resnet9:ngf=32", 800, 2e-4)  # fmt: skip
    assert config.teacher.options == {}  # a recipe's options replace the built-in ones, they do not merge
    assert [(s.name, s.student, s.options) for s in config.students] == [
        ("omgd-ngf8", "mobile-resnet:ngf=8", {"deep_ngf": 8, "deep_blocks": 9}), ("kd-ngf8", "mobile-resnet:ngf=8", {})]


CHANGED = [
    "seed=3", "size=48", "data.count=20", "data.val_count=5", "data.direction=BtoA", "data.options={photos: /p}",
    "teacher.steps=11", "teacher.batch=2", "teacher.lr=0.0005", "teacher.options={ndf: 16}",
    "students.0.steps=7", "students.0.batch=3", "students.0.lr=0.0003", "students.1.method=gan-compression",
    "prune={student: kd-ngf8, target_rate: 0.4, importance: l2}", "features.network=/w/pt_inception.pth",
    "features.steps=30", "export.opset=13", "bench.threads=1", "bench.batch=2", "bench.warmup_ms=50",
    "bench.iterations=7", "bench.duration=0.5", "eval.split=train", "eval.batch=4",
]  # fmt: skip


def test_the_dumped_recipe_reads_back_into_the_same_configuration(tmp_path):
    config = load_config("edges2photos", CHANGED)
    path = tmp_path / "recipe.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config
    assert "  lr: 0.0005" in path.read_text() and "# Adam learning rate" in path.read_text()


def test_print_recipe_prints_the_resolved_recipe_with_comments(cli):
    default = cli("run", "--print-recipe")
    assert default.code == 0 and "# optimisation steps" in default.out and "The built-in recipe" in default.out
    assert parse_config(yaml.safe_load(default.out)) == RunConfig()
    changed = cli("run", "--print-recipe", "teacher.lr=0.001", "students.0.method=kd")
    assert changed.code == 0
    assert parse_config(yaml.safe_load(changed.out)) == load_config(None, ["teacher.lr=0.001", "students.0.method=kd"])


# ------------------------------------------------------------------------------------------ the run directory


def test_the_resolved_configuration_is_written_before_the_first_stage(cli, cache, tmp_path):
    run = tmp_path / "run"
    args = ["data.path=" + str(tmp_path / "nowhere"), "teacher.lr=1e-3", "students.1.steps=9"]
    result = cli("run", "-o", run, *args)
    assert result.code == 2 and "stage data failed" in result.err
    assert load_config(run / "recipe.yaml") == load_config(None, args)


def test_from_a_stage_without_its_inputs_says_which_stage_to_run(cli, cache, tmp_path):
    result = cli("run", "-o", tmp_path / "run", "--from", "teacher", "data.count=12")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "stage data has no result for this configuration yet" in result.err
    assert "--from data data.count=12`" in result.err
    assert (tmp_path / "run" / "recipe.yaml").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "bnech"], "--only bnech: no such stage (did you mean bench?); stages: data, teacher"),
        (["--from", "data", "--only", "eval"], "give --only or --from, not both"),
    ],
)
def test_bad_stage_selections_give_one_line(cli, cache, tmp_path, args, message):
    assert message in one_line_error(cli, tmp_path, *args)


# ------------------------------------------------------------------------------------------ reproduce


def leaf_fields(cls: type, prefix: str = "") -> list[str]:
    """Dotted recipe keys of every leaf field of a config dataclass (``*`` for list items)."""
    hints, leaves = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        key = prefix + (f.metadata.get("key") or f.name)
        kind = hints[f.name]
        inner = [a for a in typing.get_args(kind) if dataclasses.is_dataclass(a)]
        if dataclasses.is_dataclass(kind):
            leaves += leaf_fields(kind, key + ".")
        elif inner:
            leaves += leaf_fields(inner[0], key + (".*." if typing.get_origin(kind) is list else "."))
        else:
            leaves.append(key)
    return leaves


def test_every_recipe_field_has_a_place_in_the_stage_commands():
    mapped = {path for flags in FLAGS.values() for path in flags} | set(STRUCTURAL)
    leaves = leaf_fields(RunConfig)
    assert "students.*.lr" in leaves and "teacher.from" in leaves and "prune.importance" in leaves
    assert sorted(set(leaves) - mapped) == []
    assert sorted(mapped - set(leaves)) == []  # no stale entries


def parse_command(line: str) -> tuple[str, dict[str, object]]:
    """Parse a generated ``pocketgan VERB ...`` line with the real CLI: ``(verb, {flag or argument: value})``."""
    from pocketgan.cli import app

    argv = shlex.split(line)
    assert argv[0] == "pocketgan"
    command = typer.main.get_command(app)  # typer's (vendored) click objects: walk the groups by duck typing
    ctx, args, verb = command.context_class(command), argv[1:], argv[1]
    while hasattr(command, "get_command"):
        command = command.get_command(ctx, args[0])
        ctx, args = command.context_class(command, parent=ctx), args[1:]
    parsed = command.make_context(verb, list(args), parent=ctx.parent)
    values: dict[str, object] = {}
    for param in command.params:
        value = parsed.params[param.name]
        value = list(value) if isinstance(value, tuple) else value
        for name in param.opts:
            values[name] = value
    return verb, values


def test_the_stage_commands_parse_back_to_the_recipe_settings():
    config = load_config("edges2photos", CHANGED)
    models = ["teacher", "omgd-ngf8", "kd-ngf8", "kd-ngf8-pruned"]
    lines = reproduce_commands(config, Path("runs/x"), models=models, feature="/w/pt_inception.pth",
                               perceptual_methods=["omgd"])  # fmt: skip
    parsed: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        if line and not line.startswith("#"):
            verb, values = parse_command(line)
            parsed.setdefault(verb, []).append(values)
    assert parsed["run"] == [{"args": ["runs/x/recipe.yaml"], "--out": Path("runs/x"), "-o": Path("runs/x"),
                              "--only": None, "--from": None, "--print-recipe": False}]  # fmt: skip
    (data,) = parsed["data"]
    assert (data["--size"], data["--seed"], data["--count"], data["--val-count"]) == ("48", 3, 20, 5)
    assert data["--option"] == ["photos=/p"] and data["-o"] == Path("data")
    (teacher,) = parsed["teacher"]
    assert (teacher["--arch"], teacher["--steps"], teacher["--batch"], teacher["--lr"]) == ("resnet9:ngf=32", 11, 2,
                                                                                            0.0005)  # fmt: skip
    assert (teacher["--size"], teacher["--seed"], teacher["--direction"]) == ("48", 3, "BtoA")
    assert teacher["--option"] == ["ndf=16"] and teacher["--data"] == Path("data")
    omgd, kd = parsed["distill"]
    assert (omgd["--method"], omgd["--student"], omgd["--steps"], omgd["--batch"], omgd["--lr"]) == (
        "omgd", "mobile-resnet:ngf=8", 7, 3, 0.0003)  # fmt: skip
    assert omgd["--perceptual"] == "/w/pt_inception.pth" and omgd["--option"] == ["deep_ngf=8", "deep_blocks=9"]
    assert (omgd["--direction"], omgd["--seed"], omgd["--size"], omgd["-o"]) == ("BtoA", 3, "48", Path("omgd-ngf8"))
    assert (kd["--method"], kd["--perceptual"], kd["--teacher"]) == ("gan-compression", None, Path("teacher"))
    (prune,) = parsed["prune"]
    assert (prune["model"], prune["-o"]) == ("kd-ngf8", Path("kd-ngf8-pruned"))
    assert (prune["--target-rate"], prune["--ratio"], prune["--target-macs"]) == (0.4, None, None)
    assert (prune["--importance"], prune["--size"]) == ("l2", "48")
    assert [(e["model"], e["--format"], e["--opset"], e["--size"]) for e in parsed["export"]] == [
        (name, "onnx", 13, "48") for name in models
    ]
    (bench,) = parsed["bench"]
    assert bench["artifacts"] == [f"onnx/{name}/model.onnx" for name in models]
    assert (bench["--threads"], bench["--batch"], bench["--warmup-ms"], bench["--iterations"], bench["--duration"]) == (
        1, 2, 50.0, 7, 0.5)  # fmt: skip
    evals = parsed["eval"]
    assert [(e["model"], e["--teacher"]) for e in evals] == [("teacher", None)] + [(n, "teacher") for n in models[1:]]
    assert {(e["--split"], e["--batch"], e["--size"], e["--direction"], e["--feature"]) for e in evals} == {
        ("train", 4, "48", "BtoA", "/w/pt_inception.pth")}  # fmt: skip


@pytest.mark.parametrize(("fmt", "artifact"), [("onnx", "model.onnx"), ("ort", "model.ort"), ("openvino", "model.xml")])
def test_the_bench_command_names_the_artifact_of_the_export_format(fmt, artifact):
    config = load_config(None, [f"export.format={fmt}"])
    lines = reproduce_commands(config, Path("r"), models=["teacher", "s"])
    verb, values = parse_command(next(line for line in lines if line.startswith("pocketgan bench ")))
    assert values["artifacts"] == [f"onnx/teacher/{artifact}", f"onnx/s/{artifact}"]
    exports = [parse_command(line)[1] for line in lines if line.startswith("pocketgan export ")]
    assert [(e["--format"], e["-o"]) for e in exports] == [(fmt, Path("onnx/teacher")), (fmt, Path("onnx/s"))]


def test_an_imported_teacher_is_reproduced_by_importing_it():
    config = load_config(None, ["teacher.from=/models/latest_net_G.pth", "teacher.arch=resnet9:ngf=64"])
    line = next(line for line in reproduce_commands(config, Path("r"), models=["teacher"]) if " teacher " in line)
    _, teacher = parse_command(line)
    assert (teacher["--arch"], teacher["--init-arch"], teacher["--steps"]) == ("/models/latest_net_G.pth",
                                                                               "resnet9:ngf=64", 0)  # fmt: skip


def test_a_built_in_recipe_is_selected_by_name(cli, tmp_path, monkeypatch):
    config = load_config("cyclegan", ["teacher.steps=7"])
    assert config.name == "photos2stylized-cyclegan" and config.data.builder == "photos2stylized-unpaired"
    assert config.teacher.method == "cyclegan" and config.teacher.steps == 7
    assert [s.method for s in config.students] == ["omgd", "gan-compression"]
    assert load_config("default") == RunConfig() and RunConfig().teacher.method == "pix2pix"
    assert load_config(None, ["teacher.method=cyclegan"]).teacher.method == "cyclegan"
    with pytest.raises(PocketganError, match=r"cyclgan: no such recipe file or built-in recipe \(did you mean cyclegan"):
        load_config("cyclgan")
    with pytest.raises(PocketganError, match="teacher.method must be one of pix2pix, cyclegan"):
        load_config("cyclegan", ["teacher.method=cycle"])
    monkeypatch.chdir(tmp_path)
    Path("cyclegan").write_text("name: from-a-file\n")  # a file of that name wins over the built-in recipe
    assert load_config("cyclegan").name == "from-a-file"
    printed = cli("run", "cyclegan", "--print-recipe")
    assert printed.code == 0 and "name: from-a-file" in printed.out


def test_the_cyclegan_recipe_reproduces_its_teacher_with_the_method():
    config = load_config("cyclegan")
    commands = reproduce_commands(config, Path("run"), models=["teacher", *(s.name for s in config.students)])
    teacher = next(line for line in commands if line.startswith("pocketgan teacher"))
    assert "--method cyclegan" in teacher
