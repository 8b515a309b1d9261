"""``python -m agentaudit.cli``: the same entry point as the ``agentaudit`` console script."""

from __future__ import annotations

import sys

from agentaudit.cli import main

sys.exit(main())
