"""No module under src/ reaches into private attributes (Keras internals above all).

The type of an expression is unknown to a source scan, so the rule is wider than "private
Keras attributes" and therefore cannot miss one: outside ``self``/``cls``, no attribute whose
name starts with one underscore is read or written, no ``getattr``/``hasattr``/``setattr``
names one, and nothing is imported from ``keras.src`` or another private module.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
OWN_OBJECTS = {"self", "cls"}
REFLECTION = {"getattr", "hasattr", "setattr", "delattr"}


def is_private(name: str) -> bool:
    """One leading underscore and not a dunder name."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, description) of every private access in a parsed module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in OWN_OBJECTS):
                found.append((node.lineno, f"attribute {node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in REFLECTION
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            found.append((node.lineno, f"{node.func.id} {node.args[1].value}"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
            for module in modules:
                parts = module.split(".")
                if parts[0] in {"keras", "tensorflow", "jax", "torch"} and (
                    "src" in parts[1:] or any(is_private(part) for part in parts)
                ):
                    found.append((node.lineno, f"import {module}"))
    return found


def test_the_scan_finds_private_access() -> None:
    """The rule itself: the patterns the old engine used are all caught, public ones are not."""
    caught = private_uses(
        ast.parse(
            "graph = model._functional\n"
            "graph._run_through_graph(images)\n"
            "x.output._keras_history.operation\n"
            "getattr(layer, '_call_context_args', ())\n"
            "from keras.src.models import functional\n"
            "self._cache = {}\n"
            "model.get_layer('x').output.__class__\n"
        )
    )
    assert sorted(line for line, _ in caught) == [1, 2, 3, 4, 5]


def test_no_module_under_src_touches_private_attributes() -> None:
    """Zero private accesses in src/ (each hit names file, line and attribute)."""
    hits = [
        f"{path.relative_to(SOURCE.parent)}:{line}: {what}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line, what in private_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert hits == []
