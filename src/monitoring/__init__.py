"""Production monitoring: an append-only attention log of low-confidence predictions, and its summary.

The two calls of docs/usage_guide.md's monitoring snippet are importable from here:
``from src.monitoring import generate_gradcam_analysis, log_attention_pattern``.
"""

from src.monitoring.attention_log import generate_gradcam_analysis, log_attention_pattern

__all__ = ["generate_gradcam_analysis", "log_attention_pattern"]
