"""The state store, on SQLite and on PostgreSQL: identity and merges, what readers are owed,
digests and deliveries, dry runs, migrations."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect, text

from digest.errors import StoreError
from digest.models import Match, Paper, Scored
from digest.store import Store
from digest.store.base import WAL_CHECKPOINT_PAGES
from digest.store.migrations import SCHEMA_VERSION

NOW = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)
D0, D1, D2 = date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15)


def paper(title: str, arxiv_id: str | None = None, **fields) -> Paper:
    return Paper.from_source(
        title=title, abstract=fields.pop("abstract", f"About {title}."), arxiv_id=arxiv_id, **fields
    )


@pytest.fixture
def store(store_target):
    with Store.open(store_target) as opened:
        yield opened


def owed(store: Store, name: str, day: date, backfill: int = 0) -> list[int]:
    joined = store.register_subscriber(name, day)
    return [p.uid for p in store.pending_papers(name, day, joined, backfill)]


def digest_of(
    store: Store,
    name: str,
    day: date,
    chosen: list[int],
    candidates: list[int],
    channels=("email",),
):
    store.register_subscriber(name, day)
    stored = {p.uid: p for p in store.get_papers(candidates)}
    selected = [Scored(stored[uid], 1.0) for uid in chosen]
    return store.create_digest(
        name, day, selected, list(stored.values()), list(channels), None, NOW
    )


# --- schema ----------------------------------------------------------------------------------


def test_a_new_store_has_the_current_schema_and_refuses_a_newer_one(store_target):
    with Store.open(store_target) as store:
        assert store.schema_version == SCHEMA_VERSION == 9
        with store.transaction() as conn:
            conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        Store.open(store_target)


def test_older_stores_are_migrated_and_keep_their_data(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        uids = store.upsert_papers(
            [paper("Old Paper", "2301.00001"), paper("Other", "2301.00002")], D0, NOW
        ).uids
        old = digest_of(store, "alice", D0, [uids[0]], uids)
        with store.transaction() as conn:  # make it what version 1 created
            conn.execute(text("DROP TABLE readers"))
            for table in (
                "reader_keys",
                "ratings",
                "opt_outs",
                "bounces",
                "mail_log",
                "embeddings",
                "tastes",
            ):
                conn.execute(text(f"DROP TABLE {table}"))
            conn.execute(text("ALTER TABLE subscribers DROP COLUMN served_at"))
            conn.execute(text("DROP INDEX ix_digests_watermark"))
            conn.execute(text("ALTER TABLE digests DROP COLUMN watermark"))
            conn.execute(text("ALTER TABLE ledger DROP COLUMN section"))
            conn.execute(text("ALTER TABLE deliveries DROP COLUMN unknown_sends"))
            conn.execute(
                text(
                    "INSERT INTO ledger (subscriber, paper_id, digest_id, status, score, matches) "
                    f"VALUES ('alice', {uids[1]}, {old.digest_id}, 'considered', 0, '[]')"
                )
            )
            conn.execute(  # matches as version 1 wrote them: objects, not lists
                text(
                    'UPDATE ledger SET matches = \'[{"term": "old", "field": "title", '
                    '"count": 1, "points": 2.5, "kind": "phrase", "via": ""}]\' '
                    "WHERE status = 'selected'"
                )
            )
            conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    with Store.open(path) as store:
        assert store.schema_version == 9
        with Store.open(tmp_path / "new.db") as fresh:
            for table in (
                "subscribers",
                "reader_keys",
                "ratings",
                "opt_outs",
                "bounces",
                "embeddings",
                "tastes",
            ):
                assert columns(store, table) == columns(fresh, table), table
            assert indexes(store, "mail_log") == indexes(fresh, "mail_log")
            assert indexes(store, "digests") == indexes(fresh, "digests")
            assert columns(store, "deliveries") == columns(fresh, "deliveries")
            assert columns(store, "readers") == columns(fresh, "readers")
            assert indexes(store, "readers") == indexes(fresh, "readers")
            assert "ix_digests_watermark" in indexes(fresh, "digests")
        # An old pending delivery has had no copy sent without confirmation.
        assert store.mark_unknown(old.digest_id, "email", "no answer") == "unknown"
        loaded = store.load_digest(old.digest_id)
        assert [(s.paper.uid, s.section) for s in loaded.papers] == [(uids[0], None)]
        assert loaded.papers[0].matches == (Match("old", "title", 1, 2.5, "phrase", ""),)
        # The old "considered" rows give the migrated digest its watermark: nothing re-offered.
        assert owed(store, "alice", D1) == []
        new = store.upsert_papers([paper("New", "2301.00003")], D1, NOW).uids
        assert owed(store, "alice", D1) == new


def columns(store: Store, table: str) -> list[str]:
    return [column["name"] for column in inspect(store.conn).get_columns(table)]


def indexes(store: Store, table: str) -> dict[str, list[str]]:
    """A table's indexes: name and columns."""
    found = inspect(store.conn).get_indexes(table)
    return {index["name"]: index["column_names"] for index in found}


def test_a_sqlite_store_is_set_up_for_a_writer_beside_readers_and_large_histories(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        setting = {
            name: store.conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "wal_autocheckpoint")
        }
    # WAL, synced at checkpoints (NORMAL is 1), and checkpoints ten times rarer than
    # SQLite's default, which cost a large store most of its recording time.
    assert setting == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "wal_autocheckpoint": WAL_CHECKPOINT_PAGES,
    }
    assert WAL_CHECKPOINT_PAGES == 10_000


def test_postgresql_without_its_driver_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    with pytest.raises(StoreError, match=r"pip install 'paper-digest\[postgres\]'") as failed:
        Store.open("postgresql://digest:secret@db.example.org/digest")
    assert "secret" not in str(failed.value)


def test_an_unreachable_postgresql_server_is_a_clear_error():
    with pytest.raises(StoreError) as failed:
        Store.open("postgresql://digest:secret@127.0.0.1:1/digest")  # nothing listens there
    assert "127.0.0.1:1/digest: cannot open the store" in failed.value.message
    assert "`[store] url`" in failed.value.hint and "[store] path" not in failed.value.hint
    assert "secret" not in str(failed.value)


def test_an_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store's folder"):
        Store.open(blocker / "sub" / "s.db")


# --- identity --------------------------------------------------------------------------------


def test_same_arxiv_id_in_any_version_is_one_paper(store):
    first = store.upsert_papers([paper("A Paper", "2401.00001", version=1)], D0, NOW)
    again = store.upsert_papers([paper("A Paper (v2 title)", "2401.00001", version=2)], D1, NOW)
    assert first.new == 1 and again.new == 0
    assert first.uids == again.uids
    stored = store.get_papers(first.uids)[0]
    assert stored.paper.version == 2
    assert stored.first_seen == D0


def test_a_paper_seen_by_title_then_by_id_stays_one_paper(store):
    by_title = store.upsert_papers([paper("Sparse Finetuning for LLMs", author_count=4)], D0, NOW)
    by_id = store.upsert_papers(
        [paper("Sparse  finetuning for LLMs!", "2310.06927", authors=("A", "B", "C", "D"))], D1, NOW
    )
    assert by_id.new == 0 and by_id.uids == by_title.uids
    stored = store.find_paper("2310.06927v1")
    assert stored is not None and stored.uid == by_title.uids[0]
    assert stored.paper.arxiv_id == "2310.06927"
    assert stored.paper.authors == ("A", "B", "C", "D")
    assert store.find_paper("Sparse Finetuning for LLMs").uid == stored.uid


def test_words_of_titles_find_the_papers_that_hold_them_on_either_store(store):
    uids = store.upsert_papers(
        [paper("Sparse Finetuning for LLMs!", "2310.06927"), paper("Dense finetuning, 100%_done"),
         paper("Attention Is All You Need")], D0, NOW,
    ).uids  # fmt: skip
    assert [p.uid for p in store.papers_titled("FINETUNING", 5)] == uids[:2]
    assert [p.uid for p in store.papers_titled("finetuning for", 5)] == uids[:1]
    assert [p.uid for p in store.papers_titled("finetuning", 1)] == uids[:1]
    # A title's punctuation is not a wildcard: "100%_" is the words "100" and "done".
    assert [p.uid for p in store.papers_titled("100%_done", 5)] == uids[1:2]
    assert store.papers_titled("%", 5) == [] and store.papers_titled("recurrence", 5) == []


def test_two_rows_of_one_paper_merge_into_the_older_with_its_ledger(store):
    title_row = store.upsert_papers([paper("Deep Nets Are Shallow")], D0, NOW).uids[0]
    id_row = store.upsert_papers(
        [paper("Deep nets are shallow, really", "2402.00002")], D0, NOW
    ).uids[0]
    assert title_row < id_row
    digest_of(store, "alice", D0, [title_row], [title_row, id_row])
    merged = store.upsert_papers([paper("Deep Nets Are Shallow", "2402.00002")], D1, NOW)
    assert merged.new == 0 and merged.uids == [title_row]  # the older row survives
    assert store.get_papers([id_row]) == []
    assert store.find_paper("2402.00002").uid == title_row
    assert store.find_paper("Deep nets are shallow, really").uid == title_row
    assert owed(store, "alice", D1) == []  # offered once, not again after the merge


def test_the_same_title_with_another_arxiv_id_is_another_paper(store):
    a = store.upsert_papers([paper("Attention Is All You Need", "1706.03762")], D0, NOW).uids[0]
    b = store.upsert_papers([paper("Attention Is All You Need", "2501.99999")], D0, NOW).uids[0]
    assert a != b


def test_duplicates_inside_one_batch_are_one_paper(store):
    result = store.upsert_papers(
        [
            paper("Twice Listed"),
            paper("Twice listed!", "2404.00004"),
            paper("Another"),
            paper("twice listed"),
        ],
        D0,
        NOW,
    )
    assert result.new == 2
    assert result.uids[0] == result.uids[1] == result.uids[3] != result.uids[2]
    assert store.get_papers([result.uids[0]])[0].paper.arxiv_id == "2404.00004"


def test_richest_fields_win_when_merging(store):
    uid = store.upsert_papers(
        [paper("P", abstract="Cut short by the pa", author_count=13, upvotes=4)], D0, NOW
    ).uids[0]
    store.upsert_papers(
        [
            paper(
                "P",
                "2403.00003",
                abstract="Cut short by the page? No: the full abstract.",
                upvotes=2,
                categories=("cs.LG",),
            )
        ],
        D1,
        NOW,
    )
    merged = store.get_papers([uid])[0].paper
    assert merged.abstract == "Cut short by the page? No: the full abstract."
    assert merged.upvotes == 4 and merged.author_count == 13
    assert merged.categories == ("cs.LG",)


def test_papers_round_trip(store):
    original = paper(
        "Round Trip",
        "2405.00005",
        authors=("Ä", "B"),
        categories=("cs.LG", "stat.ML"),
        published=date(2024, 5, 1),
        upvotes=3,
        ai_keywords=("x",),
        sources=("a", "b"),
    )
    uid = store.upsert_papers([original], D0, NOW).uids[0]
    assert store.get_papers([uid])[0].paper == original


# --- what readers are owed ---------------------------------------------------------------------


def test_after_a_digest_a_reader_is_owed_only_what_came_later(store):
    uids0 = store.upsert_papers([paper("Day zero"), paper("Day zero, too")], D0, NOW).uids
    assert owed(store, "alice", D0) == uids0
    digest_of(store, "alice", D0, uids0[:1], uids0)  # one chosen, one only considered
    uids1 = store.upsert_papers([paper("Day one"), paper("Day one, too")], D1, NOW).uids
    assert owed(store, "alice", D1) == uids1
    assert owed(store, "alice", D0) == []  # re-running an earlier day offers nothing new


def test_the_ranking_background_is_the_newest_papers_by_date_not_by_id(store):
    # Listings of older days can arrive after newer ones (a backfill): ids do not follow dates.
    store.upsert_papers([paper("Newest one"), paper("Newest two")], D2, NOW)
    store.upsert_papers([paper("From the day before")], D1, NOW)
    store.upsert_papers([paper("Older")], D0, NOW)
    titles = [p.paper.title for p in store.recent_papers(D1, 2)]
    assert titles == ["Newest one", "Newest two"]
    assert len(store.recent_papers(D0, 10)) == 4


def test_new_readers_get_recent_papers_unless_backfilled(store):
    store.upsert_papers([paper("Old news")], D0, NOW)
    fresh = store.upsert_papers([paper("Fresh")], D2, NOW).uids
    assert owed(store, "bob", D2) == fresh
    assert len(owed(store, "bob", D2, backfill=2)) == 2


def test_a_replayed_earlier_day_does_not_swallow_a_later_days_papers(store):
    day0 = store.upsert_papers([paper("Zero")], D0, NOW).uids
    digest_of(store, "alice", D0, day0, day0)
    later = store.upsert_papers([paper("Two")], D2, NOW).uids  # stored for a later day
    replayed = store.upsert_papers([paper("One")], D1, NOW).uids  # a replay of an earlier day
    assert owed(store, "alice", D1) == replayed
    digest_of(store, "alice", D1, [], replayed)
    assert owed(store, "alice", D2) == later  # still owed: the watermark stopped below it


def test_many_readers_at_once(store):
    uids = store.upsert_papers([paper(f"Paper {i}") for i in range(6)], D0, NOW).uids
    digest_of(store, "alice", D0, [uids[0]], uids[:3])
    readers = {"alice": None, "bob": None}
    standing = store.register_subscribers(list(readers), D0)
    pending = store.pending_for(standing, D0, {})
    assert [p.uid for p in pending.for_subscriber("alice", standing["alice"], D0, 0)] == uids[3:]
    assert [p.uid for p in pending.for_subscriber("bob", standing["bob"], D0, 0)] == uids
    # Where each reader's digests reach, read for many at once (bob has none yet).
    assert store.watermarks_of(["alice", "bob"]) == {"alice": standing["alice"].watermark}
    assert standing["alice"].watermark == max(uids[:3])


def test_a_second_digest_of_a_day_gets_the_next_sequence(store):
    a = store.upsert_papers([paper("Morning")], D0, NOW).uids
    first = digest_of(store, "alice", D0, a, a, ["page"])
    b = store.upsert_papers([paper("Afternoon")], D0, NOW).uids
    assert owed(store, "alice", D0) == b
    second = digest_of(store, "alice", D0, b, b, ["page"])
    assert (first.seq, second.seq) == (1, 2)
    assert (first.slug, second.slug) == ("2026-03-13", "2026-03-13-2")


# --- deliveries --------------------------------------------------------------------------------


def test_deliveries_stay_pending_until_confirmed(store):
    uids = store.upsert_papers([paper("Chosen"), paper("Not chosen")], D0, NOW).uids
    digest = digest_of(store, "alice", D0, uids[:1], uids, ["email", "feed"])
    assert [(p.channel, p.digest_id) for p in store.pending_deliveries("alice")] == [
        ("email", digest.digest_id),
        ("feed", digest.digest_id),
    ]
    store.mark_failed(digest.digest_id, "email", "mail server said no")
    store.mark_delivered(digest.digest_id, "feed", NOW)
    pending = store.pending_deliveries("alice")
    assert [(p.channel, p.attempts, p.last_error) for p in pending] == [
        ("email", 1, "mail server said no")
    ]
    assert list(store.pending_deliveries_of(["alice", "bob"])) == ["alice"]
    assert [s.paper.uid for s in store.load_digest(digest.digest_id).papers] == uids[:1]
    assert [f.scored.paper.uid for f in store.feed_items("alice", 10)] == uids[:1]


def test_what_the_ledger_says_about_chosen_and_considered_papers(store):
    uids = store.upsert_papers([paper("Chosen"), paper("Considered"), paper("Later")], D0, NOW).uids
    digest_of(store, "alice", D0, uids[:1], uids[:2])
    chosen = store.ledger_entry("alice", uids[0])
    assert (chosen.status, chosen.position, chosen.digest_size, chosen.digest_date) == (
        "selected",
        0,
        1,
        D0,
    )
    considered = store.ledger_entry("alice", uids[1])
    assert (considered.status, considered.score, considered.digest_date) == ("considered", None, D0)
    assert store.ledger_entry("alice", uids[2]) is None or uids[2] <= uids[1]


# --- dry runs, runs, cursors -------------------------------------------------------------------


def test_readers_models_of_ratings_are_kept_each_replacing_the_last(store_target):
    import numpy as np

    from digest.rank.learn import Taste

    first = Taste("a" * 32, 3, ("attent", "linear"), np.array([0.5, -0.25], "<f4"))
    meant = Taste("b" * 32, 4, ("scan",), np.array([1.0], "<f4"), np.arange(3, dtype="<f4"))
    with Store.open(store_target) as store:
        assert store.tastes_of(["alice"]) == {}
        store.keep_tastes({"alice": first, "bob": meant}, NOW)
        store.keep_tastes({"alice": meant}, NOW)  # refitted: replaces the last one
        found = store.tastes_of(["alice", "bob", "carol"])
    assert set(found) == {"alice", "bob"}
    for name in ("alice", "bob"):
        taste = found[name]
        assert (taste.fingerprint, taste.ratings, taste.words) == ("b" * 32, 4, ("scan",))
        assert taste.weights.tolist() == [1.0] and taste.meaning.tolist() == [0.0, 1.0, 2.0]
    # Applied to a day whose vectors have other columns: a word it lacks counts nothing.
    weights = first.coefficients({"linear": 0, "other": 1}, width=2, dims=0)
    assert weights.tolist() == [-0.25, 0.0]


def test_a_dry_run_sees_its_own_writes_and_leaves_nothing(store_target):
    with Store.open(store_target) as real:
        real.upsert_papers([paper("Kept")], D0, NOW)
    with Store.open(store_target, dry_run=True) as dry:
        uids = dry.upsert_papers([paper("Only in the dry run")], D1, NOW).uids
        assert dry.get_papers(uids)[0].paper.title == "Only in the dry run"
        digest_of(dry, "alice", D1, uids, uids)
        run_id = dry.start_run(D1, NOW)
        dry.finish_run(run_id, "ok", {}, NOW)
    with Store.open(store_target) as after:
        summary = after.summary()
        assert summary.papers == 1
        assert summary.subscribers == [] and summary.runs == []


def test_cursor_round_trip(store):
    assert store.get_cursor("hf") == {}
    store.set_cursor("hf", {"etag": "abc", "last": "2026-03-13"}, NOW)
    store.set_cursor("hf", {"etag": "def"}, NOW)
    assert store.get_cursor("hf") == {"etag": "def"}


def test_runs_left_running_by_a_dead_process_become_interrupted(store):
    crashed = store.start_run(D0, NOW)
    store.close()
    with Store.open(
        store.engine.url.render_as_string(hide_password=False) if store.postgres else store.location
    ) as again:
        current = again.start_run(D1, NOW)
        statuses = {r["id"]: r["status"] for r in again.last_runs()}
    assert statuses == {crashed: "interrupted", current: "running"}


def test_datetimes_come_back_aware_in_utc(store):
    store.start_run(D0, datetime(2026, 3, 13, 8, 0, tzinfo=UTC).astimezone())
    assert store.last_runs()[0]["started_at"] == "2026-03-13T08:00:00+00:00"
    with pytest.raises(Exception, match="naive datetime"):
        store.start_run(D0, NOW.replace(tzinfo=None))


def test_the_summary_counts_what_was_offered(store):
    uids = store.upsert_papers([paper(f"P{i}") for i in range(5)], D0, NOW).uids
    digest = digest_of(store, "alice", D0, uids[:2], uids)
    store.mark_delivered(digest.digest_id, "email", NOW)
    [alice] = store.summary().subscribers
    assert (alice.delivered_papers, alice.considered_papers, alice.digests) == (2, 3, 1)


# --- rate limits -------------------------------------------------------------------------------


def test_requests_arriving_together_pass_a_limit_only_as_often_as_it_allows(store_target):
    """Twelve connections claim the same client's event at the same instant against a
    limit of three: exactly three pass and three are logged, on SQLite
    (its write lock) as on PostgreSQL (an advisory lock on the client)."""
    import threading
    from datetime import timedelta

    with Store.open(store_target):  # made once, before the clients race
        pass
    clients = 12
    start = threading.Barrier(clients)
    passed: list[bool] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with Store.open(store_target) as own:
                start.wait(timeout=30)
                ok = own.claim_event("post", "client-a", NOW, limit=3, per=timedelta(minutes=1))
            passed.append(ok)
        except BaseException as error:  # a thread's failure fails the test below
            errors.append(error)

    threads = [threading.Thread(target=claim) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(passed) == [False] * (clients - 3) + [True] * 3
    with Store.open(store_target) as store:
        assert store.count_events() == 3
        # Another client has limits of its own; one a minute later starts afresh.
        assert store.claim_event("post", "client-b", NOW, limit=3, per=timedelta(minutes=1))
        later = NOW + timedelta(minutes=1, seconds=1)
        assert store.claim_event("post", "client-a", later, limit=3, per=timedelta(minutes=1))
