"""Alerts in PostgreSQL: migration ``0005_alerts`` on a new and on an existing database, the
ingest role records and acknowledges alerts but cannot delete or rewrite them, and a tenant's
reader role sees only its tenants' alerts and deliveries (row-level security)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from agentaudit.cli import main
from agentaudit.detect import Firing
from agentaudit.exceptions import StoreError
from agentaudit.store import open_store
from agentaudit.store._alerts import AlertStorage, alerts_of
from agentaudit.store._pg_schema import INGEST_ROLE, MIGRATIONS, READER_ROLE

from .conftest import T0, as_role, login_role


def _firing(tenant: str, n: int = 0) -> Firing:
    return Firing(rule="budget", severity="medium", kind="compliance", title=f"budget {n}",
                  explanation="daily budget crossed", evidence=[f"e{n}"], tenant=tenant,
                  agent="Billing", timestamp=T0 + n, dedup_key=f"budget:{tenant}:{n}")


def _alerts(url: str, **kw: Any) -> AlertStorage:
    store = alerts_of(open_store(url, **kw))
    assert store is not None
    return store


def test_ingest_role_records_and_acks_alerts_but_cannot_delete_them(pg_url: str) -> None:
    open_store(pg_url).close()
    user = login_role(pg_url, INGEST_ROLE)
    store = _alerts(as_role(pg_url, user), create=False)
    try:
        alert, new = store.record_alert(_firing("acme"))
        assert new and store.record_alert(_firing("acme"))[1] is False
        store.count_repeats("acme", alert.dedup_key, 2, T0 + 50)
        acked, done = store.ack_alert(alert.id, "acme", "dana", "handled")
        assert done and acked is not None and acked.occurrences == 4
        store.record_delivery(alert.id, "soc", "dead", 3, "HTTP 500", "{}")
        assert [d["status"] for d in store.list_deliveries()] == ["dead"]
    finally:
        store.close()  # type: ignore[attr-defined]
    with psycopg.connect(as_role(pg_url, user), autocommit=True) as conn:
        for statement in ("DELETE FROM alerts", "UPDATE alerts SET rule = 'other'",
                          "UPDATE alerts SET evidence = '[]'", "DELETE FROM alert_deliveries",
                          "UPDATE alert_deliveries SET status = 'delivered'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)  # type: ignore[arg-type]


def test_tenant_reader_sees_only_its_alerts_and_deliveries(pg_url: str) -> None:
    store = _alerts(pg_url)
    try:
        ids = {t: [store.record_alert(_firing(t, n))[0].id for n in range(n_alerts)]
               for t, n_alerts in (("acme", 3), ("globex", 2))}
        for t in ids:
            store.record_delivery(ids[t][0], "soc", "delivered", 1, None, json.dumps({"t": t}))
    finally:
        store.close()  # type: ignore[attr-defined]
    user = login_role(pg_url, READER_ROLE)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenant_readers (role_name, tenant) VALUES (%s, 'acme')",
                     (user,))
    reader = _alerts(as_role(pg_url, user), readonly=True)
    try:
        assert sorted(a.id for a in reader.list_alerts("acme")) == ids["acme"]
        assert reader.list_alerts("globex") == []
        assert reader.get_alert(ids["globex"][0]) is None  # not even by id
        assert [d["payload"] for d in reader.list_deliveries()] == ['{"t": "acme"}']
        with pytest.raises(StoreError):
            reader.record_alert(_firing("acme", 9))
    finally:
        reader.close()  # type: ignore[attr-defined]
    with psycopg.connect(as_role(pg_url, user), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 3
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE alerts SET status = 'acked'")


def test_an_existing_database_gains_the_alerts_tables(pg_url: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A database made before ``0005_alerts``: a reader is told to migrate, ``db migrate``
    adds the tables, and ``db check`` then finds row-level security on them."""
    from agentaudit.store import _pg_sql, postgres

    older = [m for m in MIGRATIONS if m[0] != "0005_alerts"]
    with monkeypatch.context() as mp:
        mp.setattr(_pg_sql, "MIGRATIONS", older)
        mp.setattr(postgres, "MIGRATIONS", older)
        open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('alerts')").fetchone()[0] is None
    with pytest.raises(StoreError, match=r"lacks migrations \['0005_alerts'\]"):
        open_store(pg_url, create=False)
    assert main(["db", "migrate", "--db", pg_url]) == 0
    assert "0005_alerts" in capsys.readouterr().out
    assert main(["alerts", "list", "--db", pg_url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["db", "check", "--db", pg_url, "--days-ahead", "0"]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE alerts DISABLE ROW LEVEL SECURITY")
    capsys.readouterr()
    assert main(["db", "check", "--db", pg_url, "--days-ahead", "0"]) == 1
    assert "row-level security off on alerts" in capsys.readouterr().out
