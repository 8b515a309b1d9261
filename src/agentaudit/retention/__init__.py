"""Retention tiers, the retention job, legal holds and erasure (docs/retention.md).

Payloads expire by tier; envelopes and Merkle leaves stay, so ``agentaudit verify`` keeps
passing and names what was erased and why. Every run, hold and erasure is an ``audit.*`` event.
"""

from __future__ import annotations

from agentaudit.retention.compaction import CompactionResult, compact_before
from agentaudit.retention.config import (
    COMPLIANCE_MIN_DAYS,
    DEFAULT_DAYS,
    RetentionConfig,
    TenantPolicy,
    TierRule,
    load_config,
)
from agentaudit.retention.erasure import ErasureResult, erase, user_pseudonym
from agentaudit.retention.holds import Hold, create_hold, release_hold
from agentaudit.retention.job import (
    RetentionRun,
    apply_all,
    apply_retention,
    expiry_of,
    retention_status,
)

__all__ = [
    "COMPLIANCE_MIN_DAYS",
    "CompactionResult",
    "DEFAULT_DAYS",
    "ErasureResult",
    "Hold",
    "RetentionConfig",
    "RetentionRun",
    "TenantPolicy",
    "TierRule",
    "apply_all",
    "apply_retention",
    "compact_before",
    "create_hold",
    "erase",
    "expiry_of",
    "load_config",
    "release_hold",
    "retention_status",
    "user_pseudonym",
]
