"""The package installs a ``sketchcam`` command that runs the same CLI as
scripts/gradcam_analysis.py."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint

import pytest

from src.config import PROJECT_ROOT


def sketchcam_entry_point() -> EntryPoint:
    """The console script pyproject.toml declares, as pip installs it."""
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return EntryPoint(name="sketchcam", value=scripts["sketchcam"], group="console_scripts")


def test_sketchcam_resolves_to_the_clis_main() -> None:
    from src.cli.gradcam_analysis import main

    assert sketchcam_entry_point().load() is main


def test_sketchcam_help_lists_the_subcommands_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # pip's wrapper runs sys.exit(main()): main returns the exit code instead of raising.
    code = sketchcam_entry_point().load()(["--help"])
    out = capsys.readouterr().out
    assert code == 0
    for subcommand in ("single", "batch", "class"):
        assert subcommand in out
