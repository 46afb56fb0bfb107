"""Which Quick, Draw! drawings are held out for the audit: a fixed tenth, by a hash of key_id.

Training that skips ``is_held_out`` drawings never sees the audit's drawings
(``scripts/make_audit_data.py`` writes them out).
"""

from __future__ import annotations

import hashlib

HELD_OUT_REMAINDER = 9


def is_held_out(key_id: str) -> bool:
    """True for drawings with ``int(sha256(key_id), 16) % 10 == 9``."""
    digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()
    return int(digest, 16) % 10 == HELD_OUT_REMAINDER
