"""Append-only inside PostgreSQL: the ingest role cannot change or remove event rows; the same
change made as superuser (bypassing the trigger) is caught by verify; row-level security."""

from __future__ import annotations

import psycopg
import pytest

from agentaudit.integrity.checkpoint import load_or_create_signing_key
from agentaudit.integrity.verify import verify_log
from agentaudit.reports import Period, summary_report
from agentaudit.store import EventQuery, open_store
from agentaudit.store._pg_schema import INGEST_ROLE, READER_ROLE, RETENTION_ROLE

from .conftest import T0, as_role, events, login_role


def _vkey() -> str:
    return load_or_create_signing_key("agentaudit").verifier_key()


@pytest.fixture
def filled(pg_url: str) -> str:
    with open_store(pg_url) as s:
        s.append_batch(events(50))
    return pg_url


@pytest.mark.parametrize("statement", [
    "UPDATE events SET action = 'x' WHERE seq = 5",
    "DELETE FROM events WHERE seq = 5",
    "TRUNCATE events",
    "UPDATE event_payloads SET payload = NULL WHERE seq = 5",
    "DELETE FROM event_payloads WHERE seq = 5",
    "DELETE FROM event_keys WHERE seq = 5",
    "DELETE FROM checkpoints",
    "UPDATE log_state SET size = 3",  # allowed by grants, but see below: verify catches it
])
def test_ingest_role_cannot_change_events(filled: str, statement: str) -> None:
    user = login_role(filled, INGEST_ROLE)
    with psycopg.connect(as_role(filled, user), autocommit=True) as conn:
        if statement.startswith("UPDATE log_state"):
            conn.execute(statement)  # the log head moves forward by the ingest role only
            with open_store(filled) as s:
                assert verify_log(s, "default", vkey=_vkey()).damage.kind == "inserted"
            return
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)  # type: ignore[arg-type]
    with open_store(filled) as s:
        assert verify_log(s, "default", vkey=_vkey()).ok


def test_ingest_role_appends(filled: str) -> None:
    user = login_role(filled, INGEST_ROLE)
    with open_store(as_role(filled, user)) as s:
        assert s.append_batch(events(5, start=1_790_000_000.0)).accepted == 5
        assert s.count(EventQuery()) == 55
        assert verify_log(s, "default", vkey=_vkey()).ok
        # its batches (staged: row security applies to it) keep the report rollups too
        assert s.connection.execute(  # type: ignore[attr-defined]
            "SELECT sum(events) FROM rollup").fetchone()[0] == 55


def test_even_superuser_is_stopped_by_the_trigger(filled: str) -> None:
    with psycopg.connect(filled, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE events SET action = 'x' WHERE seq = 5")


def test_superuser_tampering_is_caught_by_verify(filled: str) -> None:
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off: a superuser
        conn.execute("UPDATE events SET action = 'tampered' WHERE seq = 7")
    with open_store(filled) as s:
        damage = verify_log(s, "default", vkey=_vkey()).damage
        assert damage is not None and (damage.kind, damage.seq) == ("modified", 7)
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE events SET action = 't' WHERE seq = 7")  # put it back
        conn.execute("DELETE FROM events WHERE seq = 20")
    with open_store(filled) as s:
        damage = verify_log(s, "default", vkey=_vkey()).damage
        assert damage is not None and (damage.kind, damage.seq) == ("missing", 20)


def test_payload_change_by_superuser_is_caught(filled: str) -> None:
    with psycopg.connect(filled, autocommit=True) as conn:
        conn.execute("UPDATE event_payloads SET payload = convert_to('{\"params\":{\"i\":99}}', "
                     "'UTF8') WHERE seq = 9")
    with open_store(filled) as s:
        damage = verify_log(s, "default", vkey=_vkey()).damage
        assert damage is not None and (damage.kind, damage.seq) == ("modified", 9)


def test_tenant_reader_sees_only_its_rows(pg_url: str) -> None:
    with open_store(pg_url) as s:
        s.append_batch(events(10, tenant="acme") + events(7, tenant="globex"))
    user = login_role(pg_url, READER_ROLE)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenant_readers (role_name, tenant) VALUES (%s, 'acme')",
                     (user,))
    with open_store(as_role(pg_url, user), readonly=True) as s:
        assert s.count(EventQuery(tenant="acme")) == 10
        assert s.count(EventQuery(tenant="globex")) == 0
        assert s.get_event("acme", s.query(EventQuery(tenant="acme")).data[0].event_id)
        assert s.info().tenants == ["acme"]
        whole = Period(T0 - 3600, T0 + 86400)
        assert summary_report(s, "acme", whole)["total_events"] == 10
        assert summary_report(s, "globex", whole)["total_events"] == 0
    with psycopg.connect(as_role(pg_url, user), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM events_v").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM event_payloads").fetchone()[0] == 10
        assert conn.execute("SELECT DISTINCT tenant FROM rollup").fetchall() == [("acme",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tenant_readers VALUES (current_user, 'globex')")


def test_retention_drops_a_day_of_payloads(pg_url: str) -> None:
    from agentaudit.store._pg_sql import day_of

    day0 = day_of(events(1)[0].timestamp)
    with open_store(pg_url) as s:
        s.append_batch(events(300, step=600.0))  # about two days
    user = login_role(pg_url, RETENTION_ROLE)
    with open_store(as_role(pg_url, user), readonly=False, create=False) as s:
        assert s.drop_payload_day(day0, "retention: 1 day") is True  # type: ignore[attr-defined]
        assert s.drop_payload_day(day0, "again") is False  # type: ignore[attr-defined]
        with pytest.raises(Exception, match="append-only|permission"):
            s.connection.execute("DELETE FROM events WHERE seq = 1")  # type: ignore[attr-defined]
    with open_store(pg_url) as s:
        report = verify_log(s, "default", vkey=_vkey())
        assert report.ok, report.damage
        erased = {seq for seq, _id, why in report.erased if why == "retention: 1 day"}
        first = s.query(EventQuery(limit=1)).data[0]
        assert first.params is None and first.user_id is None and first.seq in erased
        assert s.count(EventQuery()) == 300  # the envelopes stay
        assert len(erased) == s.count(EventQuery(until=(day0 + 1) * 86400.0))
        later = s.query(EventQuery(since=(day0 + 1) * 86400.0, limit=1)).data[0]
        assert later.params is not None
        # a late event for the dropped day still lands (its payload partition comes back)
        late = events(1, start=day0 * 86400.0 + 5)[0]
        assert s.append_batch([late]).accepted == 1
        assert s.get_event("default", late.event_id).params == {"i": 0}
        assert verify_log(s, "default", vkey=_vkey()).ok
