"""The kernel: the one Registry type (built-ins, announced modules, real entry points), cache keys,
progress events and option parsing."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from pocketgan.core.errors import PocketganError, first_line
from pocketgan.core.keys import cache_key, code_version, fingerprint
from pocketgan.core.options import parse_key_values, parse_size, parse_square_size
from pocketgan.core.progress import ProgressEvent, ProgressTask
from pocketgan.core.registry import Registry, did_you_mean


def write_plugin(root: Path, group: str, name: str, target: str, source: str) -> None:
    """A real installed distribution on ``root``: a module and a dist-info with one entry point."""
    (root / f"{target.split(':')[0]}.py").write_text(textwrap.dedent(source))
    info = root / "pocketgan_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pocketgan-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    importlib.invalidate_caches()
    for module in ("pg_plugin_ok", "pg_plugin_broken"):
        sys.modules.pop(module, None)


def test_register_get_and_suggest():
    registry: Registry[int] = Registry("widget")
    registry.register("alpha", 1)

    @registry.register("beta")
    def beta() -> int:
        return 2

    assert registry.get("alpha") == 1 and registry.get("beta") is beta
    assert registry.names() == ["alpha", "beta"] and "alpha" in registry and "gamma" not in registry
    with pytest.raises(PocketganError, match=r"unknown widget 'alpah' \(did you mean alpha\?\); choose from alpha, beta"):
        registry.get("alpah")
    assert did_you_mean("stpes", ["steps", "batch"]) == " (did you mean steps?)"
    assert did_you_mean("zzz", ["steps"]) == ""


def test_builtin_modules_are_imported_on_first_lookup_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "pg_builtin_mod.py").write_text(
        "from tests_registry_target import REGISTRY\nREGISTRY.register('built-in', 42)\n"
    )
    registry: Registry[int] = Registry("thing", builtin_modules=["pg_builtin_mod"])
    target = type(sys)("tests_registry_target")
    target.REGISTRY = registry
    monkeypatch.setitem(sys.modules, "tests_registry_target", target)
    monkeypatch.delitem(sys.modules, "pg_builtin_mod", raising=False)
    assert "pg_builtin_mod" not in sys.modules
    assert registry.get("built-in") == 42
    assert "pg_builtin_mod" in sys.modules


def test_announced_entries_import_their_module_when_asked_for(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[str] = Registry("backend")
    monkeypatch.setitem(sys.modules, "tests_registry_target", type(sys)("tests_registry_target"))
    sys.modules["tests_registry_target"].REGISTRY = registry
    (tmp_path / "pg_announced.py").write_text("from tests_registry_target import REGISTRY\nREGISTRY.register('lazy', 'ok')\n")
    monkeypatch.delitem(sys.modules, "pg_announced", raising=False)
    registry.announce("lazy", "pg_announced")
    assert "lazy" in registry.names() and "pg_announced" not in sys.modules
    assert registry.get("lazy") == "ok"


def test_a_real_entry_point_plugin_is_found_and_loaded(plugin_path):
    write_plugin(plugin_path, "pocketgan.test_group", "mine", "pg_plugin_ok:make", "def make():\n    return 'made'\n")
    registry: Registry = Registry("generator", group="pocketgan.test_group")
    assert registry.names() == ["mine"]
    assert registry.get("mine")() == "made"


def test_a_broken_plugin_is_one_line_naming_it(plugin_path):
    write_plugin(plugin_path, "pocketgan.test_group", "bad", "pg_plugin_broken:make", "raise RuntimeError('boom')\n")
    registry: Registry = Registry("exporter", group="pocketgan.test_group")
    with pytest.raises(PocketganError, match=r"exporter plugin 'bad' \(pg_plugin_broken:make.*RuntimeError: boom"):
        registry.get("bad")


def test_the_stage_registries_are_registry_instances():
    from pocketgan.distill.base import DISTILLERS
    from pocketgan.distill.data.builders import BUILDERS
    from pocketgan.distill.features.base import FEATURE_NETWORKS
    from pocketgan.export.registry import EXPORTERS
    from pocketgan.models.registry import DISCRIMINATORS, GENERATORS
    from pocketgan.runtime.registry import BACKENDS

    registries = (GENERATORS, DISCRIMINATORS, DISTILLERS, BUILDERS, FEATURE_NETWORKS, EXPORTERS, BACKENDS)
    assert all(isinstance(r, Registry) for r in registries)
    assert {"resnet9", "mobile-resnet"} <= set(GENERATORS.names())
    assert {"omgd", "kd", "gan-compression", "pix2pix"} <= set(DISTILLERS.names())
    assert "onnx" in EXPORTERS.names() and "ort" in BACKENDS.names()
    assert all(r.group and r.group.startswith("pocketgan.") for r in registries)


def test_fingerprints_and_cache_keys_change_with_settings_inputs_and_code():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    base = cache_key("teacher", {"steps": 10}, "data-key", code="v1")
    assert base != cache_key("teacher", {"steps": 11}, "data-key", code="v1")
    assert base != cache_key("teacher", {"steps": 10}, "other-data", code="v1")
    assert base != cache_key("teacher", {"steps": 10}, "data-key", code="v2")
    assert base == cache_key("teacher", {"steps": 10}, "data-key", code="v1")


def test_code_version_follows_the_source(tmp_path, monkeypatch):
    package = tmp_path / "pg_versioned"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "builder.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_version("pg_versioned")
    (package / "builder.py").write_text("X = 2\n")
    code_version.cache_clear()
    assert code_version("pg_versioned") != before
    with pytest.raises(ValueError, match="no module named"):
        code_version("pg_no_such_module")


def test_progress_task_reports_every_update_and_finishes_once():
    events: list[ProgressEvent] = []
    with ProgressTask(events.append, "calibrating", total=3) as task:
        for _ in task.track(range(3), status=lambda i: f"item {i}"):
            pass
        task.extend(2)
    task.close()
    assert [e.completed for e in events] == [0, 1, 2, 3, 3, 3]
    assert events[-2].total == 5 and events[3].status == "item 2"
    assert [e.finished for e in events].count(True) == 1 and events[-1].finished
    ProgressTask(None, "silent", total=1).advance()  # no callback: no-op, no error


@pytest.mark.parametrize(("text", "size"), [("256", (256, 256)), ("256x320", (256, 320)), (" 64 X 32 ", (64, 32)), (128, (128, 128))])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "256x", "x256", "0", "256x0", "2.5", "256 256", "-3"])
def test_parse_size_rejects_with_one_line(text):
    with pytest.raises(PocketganError, match="--size"):
        parse_size(text)


def test_square_sizes_and_key_values():
    assert parse_square_size("64x64") == 64
    with pytest.raises(PocketganError, match="square"):
        parse_square_size("64x32")
    assert parse_key_values(["lambda_cd=100", "agd-weights=10,1e4", "use_deep=false", "net=a.pth"]) == {
        "lambda_cd": 100, "agd_weights": [10, 10000.0], "use_deep": False, "net": "a.pth"
    }
    with pytest.raises(PocketganError, match="expected key=value"):
        parse_key_values(["oops"])


def test_first_line_quotes_one_line_of_a_library_error():
    assert first_line(RuntimeError("\n  Protobuf parsing failed.\n  at node 3\n")) == "Protobuf parsing failed."
    assert first_line(ValueError("x" * 500)) == "x" * 300
    assert first_line(ValueError("abcdef"), 3) == "abc"
    assert first_line(KeyError()) == "KeyError"  # an empty message names the type
