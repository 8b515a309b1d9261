"""Fixtures of the report tests: the scenario store and a writer for stores of one's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentaudit.reports.period import Period
from reports.store_builder import T0, Scenario, Writer, write_scenario


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    w = Writer(db_path)
    yield w
    w.audit.close()


@pytest.fixture
def scenario(writer: Writer) -> Iterator[Scenario]:
    ids = write_scenario(writer)
    store = writer.close()
    yield Scenario(store, ids)
    store.close()


@pytest.fixture
def whole() -> Period:
    """A period holding every event of the scenario."""
    return Period(T0 - 3600, T0 + 86400)
