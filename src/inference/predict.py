"""docs/usage_guide.md's ``python src/inference/predict.py --image_path sketch.png ...``.

Only a launcher: the command lives with the other commands in ``src.cli.predict`` (it parses
options, maps errors to exit codes and writes files, which is the CLI's job), so nothing in
the core ``src.inference`` package depends on the CLI. Importing this module runs nothing.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts src/inference first on the path; the project root it needs.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    runpy.run_module("src.cli.predict", run_name="__main__", alter_sys=True)
