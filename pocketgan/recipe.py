"""Pipeline recipes: YAML files with ``key=value`` overrides, validated into plain dicts."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pocketgan.core.errors import PocketganError

SECTIONS = ("name", "seed", "size", "data", "teacher", "features", "students", "prune", "export", "bench", "eval")


def default_recipe_text() -> str:
    """The YAML text of the built-in recipe."""
    return resources.files("pocketgan").joinpath("recipes/default.yaml").read_text()


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read ``path`` (or the built-in recipe) over the defaults, then apply ``a.b=value`` overrides."""
    recipe = yaml.safe_load(default_recipe_text())
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise PocketganError(f"{path}: no such recipe file")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise PocketganError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
        if not isinstance(user, dict):
            raise PocketganError(f"{path}: a recipe is a mapping of sections ({', '.join(SECTIONS)})")
        recipe = merge(recipe, user)
    for item in overrides or []:
        apply_override(recipe, item)
    validate(recipe)
    return recipe


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in ``update`` replace those in ``base``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(recipe: dict[str, Any], item: str) -> None:
    """``teacher.steps=200`` or ``students.0.method=kd``; the value is parsed as YAML."""
    key, eq, raw = item.partition("=")
    if not eq or not key:
        raise PocketganError(f"bad override {item!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node: Any = recipe
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise PocketganError(f"bad override {item!r}: no list item {part}")
            child = node[int(part)]
        else:
            child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, (dict, list)):
            raise PocketganError(f"bad override {item!r}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise PocketganError(f"bad override {item!r}: no list item {last}")
        node[int(last)] = value
    else:
        node[last] = value


def validate(recipe: dict[str, Any]) -> None:
    """Check the recipe's shape with one-line errors naming the offending key."""
    unknown = sorted(set(recipe) - set(SECTIONS))
    if unknown:
        raise PocketganError(f"unknown recipe section {unknown[0]!r}; sections: {', '.join(SECTIONS)}")
    if not isinstance(recipe.get("size"), int) or recipe["size"] < 16:
        raise PocketganError("recipe size must be an integer >= 16")
    students = recipe.get("students") or []
    if not isinstance(students, list) or not students:
        raise PocketganError("recipe needs at least one entry under students")
    names = set()
    for i, student in enumerate(students):
        for key in ("name", "method", "student"):
            if not student.get(key):
                raise PocketganError(f"students.{i} needs {key}")
        if student["name"] in names or student["name"] == "teacher":
            raise PocketganError(f"students.{i}: name {student['name']!r} is used twice")
        names.add(student["name"])
    prune = recipe.get("prune")
    if prune:
        if prune.get("student") not in names:
            raise PocketganError(f"prune.student must name one of the students ({', '.join(sorted(names))})")
        if sum(k in prune for k in ("ratio", "target_rate", "target_macs")) != 1:
            raise PocketganError("prune needs exactly one of ratio, target_rate, target_macs")


def fingerprint(*parts: Any) -> str:
    """Content address of JSON-serialisable parts (stage config + upstream keys)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
