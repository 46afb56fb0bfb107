"""Production monitoring: an append-only attention log of low-confidence predictions, and its summary."""
