"""``agentaudit.retention`` exports exactly its sorted ``__all__``."""

from __future__ import annotations

import agentaudit.retention as retention


def test_all_is_sorted_and_complete() -> None:
    assert retention.__all__ == sorted(retention.__all__)
    public = {n for n in vars(retention) if not n.startswith("_")} - {
        "annotations", "compaction", "config", "erasure", "holds", "job"}
    assert set(retention.__all__) == public
