"""The live feed of a PostgreSQL store: each tenant's log in commit order, across writers.

``events.id`` comes from a sequence and is drawn before commit, so it is not commit order across
concurrent transactions; the feed follows each tenant's ``seq`` instead, which is assigned and
committed under the tenant's advisory lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from agentaudit.server.sse import Broadcaster, StorePoller, Subscription
from agentaudit.store import open_store
from agentaudit.store._pg_sql import day_of
from agentaudit.store.postgres import PostgresStore

from .conftest import T0, events


def _open(url: str) -> PostgresStore:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    return store


def _hold_append(store: PostgresStore, batch: list[Any]) -> contextlib.AbstractContextManager[None]:
    """A write transaction that has sequenced and written ``batch`` and commits on exit."""
    store.ensure_days({day_of(ev.timestamp) for ev in batch})

    @contextlib.contextmanager
    def held() -> Iterator[None]:
        with store._write_transaction("write to"):
            store._append_locked(batch, False)
            yield

    return held()


def _ids(store: PostgresStore, tenant: str) -> list[int]:
    return [r[0] for r in store.connection.execute(
        "SELECT id FROM events WHERE tenant = %s ORDER BY id", (tenant,))]


def test_a_smaller_id_committed_last_is_not_skipped(pg_url: str) -> None:
    _open(pg_url).close()
    with _open(pg_url) as reader, _open(pg_url) as slow, _open(pg_url) as fast:
        position = reader.feed_position()
        late = events(3, tenant="a")
        early = events(2, tenant="b", start=T0 + 60)
        with _hold_append(slow, late):
            late_ids = _ids(slow, "a")  # drawn now, visible to this transaction only
            fast.append_batch(early)  # draws larger ids and commits first
            early_ids = _ids(reader, "b")
            assert max(late_ids) < min(early_ids)
            rows = reader.feed_after(position)
            assert [eid for _, eid in rows] == [e.event_id for e in early]
            position = reader.feed_advance(position, rows)
        # the transaction with the smaller ids committed last: a cursor on ids would skip it
        assert _ids(reader, "a") == late_ids
        assert reader.connection.execute("SELECT count(*) FROM events WHERE id > %s",
                                         (max(early_ids),)).fetchone()[0] == 0
        rows = reader.feed_after(position)
        assert [eid for _, eid in rows] == [e.event_id for e in late]
        assert [k[:2] for k, _ in rows] == [("a", 0), ("a", 1), ("a", 2)]
        got = reader.feed_events([k for k, _ in rows])
        assert [(e.event_id, e.tenant, e.params) for e in got] == [
            (e.event_id, "a", e.params) for e in late]
        position = reader.feed_advance(position, rows)
        assert position == {"a": 3, "b": 2} == reader.feed_position()
        assert reader.feed_after(position) == []


def test_a_tenants_next_batch_waits_for_the_commit_of_the_one_before(pg_url: str) -> None:
    """The tenant's lock is held until COMMIT, so its seqs become visible in order: the feed
    never sees seq n+1 before seq n."""
    _open(pg_url).close()
    with _open(pg_url) as reader, _open(pg_url) as first, _open(pg_url) as second:
        position = reader.feed_position()
        one, two = events(4, tenant="a"), events(3, tenant="a", start=T0 + 86400)
        second.ensure_days({day_of(ev.timestamp) for ev in two})
        waiter = threading.Thread(target=second.append_batch, args=(two,))
        with _hold_append(first, one):
            waiter.start()
            waiter.join(1.0)
            assert waiter.is_alive()  # blocked on the tenant's lock
            assert reader.feed_after(position) == []
        waiter.join(30)
        assert not waiter.is_alive()
        rows = reader.feed_after(position, limit=5)
        assert [k[1] for k, _ in rows] == [0, 1, 2, 3, 4]
        position = reader.feed_advance(position, rows)
        rows = reader.feed_after(position, limit=5)
        assert [k[1] for k, _ in rows] == [5, 6]
        assert [eid for _, eid in rows] == [e.event_id for e in two[1:]]


def test_polling_during_concurrent_writers_sees_every_event_once(pg_url: str) -> None:
    _open(pg_url).close()
    written: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with _open(pg_url) as s:
                for j in range(12):
                    batch = (events(7, tenant="t1", start=T0 + k * 1e5 + j * 1e3, step=1)
                             + events(3, tenant=f"t{2 + k % 2}", start=T0 + j, step=1))
                    s.append_batch(batch)
                    with lock:
                        written.extend(e.event_id for e in batch)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    seen: Counter[str] = Counter()
    with _open(pg_url) as reader:
        position = reader.feed_position()
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        while True:
            finished = not any(t.is_alive() for t in threads)
            rows = reader.feed_after(position, limit=13)  # small pages: many partial reads
            seen.update(eid for _, eid in rows)
            position = reader.feed_advance(position, rows)
            if finished and not rows:
                break
    assert not errors, errors
    assert len(written) == 3 * 12 * 10
    assert set(seen) == set(written)
    assert max(seen.values()) == 1


def test_the_poller_on_postgresql(pg_url: str) -> None:
    """Only the position is read while nobody listens; then each event is published once, and
    not those this process already published through the broadcaster."""
    _open(pg_url).close()
    reads: list[str] = []

    @contextlib.contextmanager
    def reader() -> Iterator[Any]:
        with _open(pg_url) as s:
            class Spy:
                def __getattr__(self, name: str) -> Any:
                    reads.append(name)
                    return getattr(s, name)
            yield Spy()

    broadcaster = Broadcaster()
    poller = StorePoller(broadcaster, reader, 0.1)
    with _open(pg_url) as w:
        w.append_batch(events(5, tenant="acme"))
        assert poller.poll() == [] and poller.position == {"acme": 5}
        w.append_batch(events(2, tenant="globex"))
        assert poller.poll() == [] and poller.position == {"acme": 5, "globex": 2}
        assert set(reads) == {"feed_position"}

        sub = broadcaster.subscribe(Subscription("acme"))
        mine = events(2, tenant="acme", start=T0 + 7200)
        w.append_batch(mine)
        broadcaster._fanout(mine)  # what this process's writer published after its commit
        theirs = events(3, tenant="acme", start=T0 + 9000) + events(1, tenant="globex")
        w.append_batch(theirs)
        polled = poller.poll()
        assert [e.event_id for e in polled] == [e.event_id for e in theirs]
        broadcaster._fanout(polled)
        assert poller.poll() == []
        assert poller.position == {"acme": 10, "globex": 3}
    assert [e.event_id for e in sub.backlog] == [e.event_id for e in mine + theirs[:3]]
