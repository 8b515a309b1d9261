"""Finding personal data and secrets in payload text (the redactor builds on these detectors)."""

from __future__ import annotations

from agentaudit.redact.detectors import DETECTORS, Detector, Finding, detector_names, scan

__all__ = ["DETECTORS", "Detector", "Finding", "detector_names", "scan"]
