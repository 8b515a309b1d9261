from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.retention.helpers import OPENED


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    """Close the PostgreSQL stores a test opened through ``helpers.open_store`` (an open
    connection left to the garbage collector is a ResourceWarning, an error here)."""
    yield
    while OPENED:
        OPENED.pop().close()
