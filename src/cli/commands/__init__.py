"""Subcommands of ``scripts/gradcam_analysis.py``: one module each, exposing ``register(subparsers)``.

``register`` adds the subcommand's parser and sets ``handler``: a function taking the parsed
arguments and returning an exit code. List a new module in
``src.cli.gradcam_analysis.COMMAND_MODULES`` to plug it in.
"""
