"""Explanations made for sketches: stroke attribution, timelines, contrasts and faithfulness checks.

Arrays and stroke lists in, dataclasses and JSON-ready dicts out; figures live in
``src.visualization.figures`` and nothing here writes files.
"""
