"""Imports between ``src/`` packages run only downwards, and no packages import each other.

The layer order is written once, here. A package may import its own modules, packages of
lower layers, and packages of its own layer as long as that makes no cycle. Every import
counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first: the foundation, sketches, models, predictions, the CAM engine, explanations
# built on it, the explainer service that holds them, applications of the service, the HTML
# reports, the batch job, then the interfaces.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "errors", "utils"),
    ("data",),
    ("models",),
    ("inference",),
    ("visualization",),
    ("explain", "evaluation"),
    ("service",),
    ("monitoring", "audit", "training"),
    ("reports",),
    ("batch",),
    ("cli", "web"),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def imported_packages(source: str, module: str) -> set[str]:
    """Top-level ``src`` packages that ``source`` (the module ``module``) imports, anywhere."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import: resolve it against the importing module's package.
                base = module.split(".")[: -node.level]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
                # "from src import web" names the package in the alias.
                if node.module == "src":
                    names = [f"src.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "src" and len(parts) > 1:
                found.add(parts[1])
    return found


def package_graph(root: Path) -> dict[str, dict[str, list[str]]]:
    """For each package under ``root``: each other package it imports, with the importing modules."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        if path == root / "__init__.py":
            continue
        module = ".".join(("src", *path.relative_to(root).with_suffix("").parts))
        package = package_of_root(path, root)
        edges = graph.setdefault(package, {})
        for target in imported_packages(path.read_text(encoding="utf-8"), module):
            if target != package:
                edges.setdefault(target, []).append(module)
    return graph


def package_of_root(path: Path, root: Path) -> str:
    """The top-level package of ``path`` inside ``root``."""
    return path.relative_to(root).with_suffix("").parts[0]


def upward_imports(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    """One line per import from a package to a package of a higher layer."""
    return [
        f"{module} imports src.{target} (layer {RANK[target]}) from layer {RANK[package]}"
        for package, edges in graph.items()
        for target, modules in edges.items()
        if target in RANK and package in RANK and RANK[target] > RANK[package]
        for module in modules
    ]


def package_cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every cycle between packages, each as the packages along it (first repeated last)."""
    cycles: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for target in sorted(graph.get(path[-1], {})):
            if target == path[0]:
                cycles.append([*path, target])
            # Only paths through packages after the start: each cycle is reported once.
            elif target > path[0] and target not in path:
                walk([*path, target])

    for package in sorted(graph):
        walk([package])
    return cycles


def test_every_package_has_a_layer() -> None:
    """A new package must be placed in ``LAYERS`` before it can be checked."""
    unplaced = sorted(set(package_graph(SRC)) - set(RANK))
    assert unplaced == [], f"add these src packages to LAYERS in {__file__}: {unplaced}"


def test_no_upward_imports() -> None:
    """No module imports a package of a higher layer, not even inside a function."""
    assert upward_imports(package_graph(SRC)) == []


def test_no_package_cycles() -> None:
    """No two packages import each other, directly or through others."""
    assert package_cycles(package_graph(SRC)) == []


@pytest.fixture
def fake_src(tmp_path: Path) -> Path:
    """A tiny ``src`` tree: data imports nothing, visualization imports data."""
    root = tmp_path / "src"
    for package in ("data", "visualization", "explain"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "visualization" / "engine.py").write_text("from src.data import preprocess\n")
    return root


def test_checker_catches_a_function_level_upward_import(fake_src: Path) -> None:
    """An import inside a function body still counts."""
    (fake_src / "data" / "late.py").write_text(
        "def load():\n    from src.visualization.engine import thing\n    return thing\n"
    )
    assert upward_imports(package_graph(fake_src)) == [
        "src.data.late imports src.visualization (layer 4) from layer 1"
    ]


def test_checker_catches_relative_and_package_imports(fake_src: Path) -> None:
    """``from ..visualization import x`` and ``from src import visualization`` both count."""
    (fake_src / "data" / "relative.py").write_text("from ..visualization import engine\n")
    (fake_src / "data" / "named.py").write_text("from src import visualization\n")
    assert sorted(upward_imports(package_graph(fake_src))) == [
        "src.data.named imports src.visualization (layer 4) from layer 1",
        "src.data.relative imports src.visualization (layer 4) from layer 1",
    ]


def test_checker_finds_a_cycle_through_three_packages(fake_src: Path) -> None:
    """data -> explain -> visualization -> data is one cycle, reported once."""
    (fake_src / "data" / "loop.py").write_text("import src.explain.thing\n")
    (fake_src / "explain" / "loop.py").write_text("from src.visualization import engine\n")
    assert package_cycles(package_graph(fake_src)) == [["data", "explain", "visualization", "data"]]
