"""Grad-CAM analysis CLI: ``python scripts/gradcam_analysis.py --help`` (see src/cli)."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from src.cli.gradcam_analysis import main  # noqa: E402

raise SystemExit(main())
