"""The state store: identity and aliases, the per-subscriber window, digests, dry runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from digest.errors import StoreError
from digest.models import Paper, Scored
from digest.store import Store
from digest.store.migrations import SCHEMA_VERSION

NOW = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)
D0, D1, D2 = date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15)


def paper(title: str, arxiv_id: str | None = None, **fields) -> Paper:
    return Paper.from_source(
        title=title, abstract=fields.pop("abstract", f"About {title}."), arxiv_id=arxiv_id, **fields
    )


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.db") as opened:
        yield opened


def test_new_store_has_the_current_schema_and_refuses_a_newer_one(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        with store.transaction() as conn:
            conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    with pytest.raises(StoreError, match="schema version 99, newer than"):
        Store.open(path)


def test_a_version_1_store_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        uid = store.upsert_papers([paper("Old Paper", "2301.00001")], D0, NOW).uids[0]
        digest = store.create_digest(
            "alice", D0, [Scored(store.get_papers([uid])[0], 2.5)], [], ["email"], None, NOW
        )
        with store.transaction() as conn:  # make it what version 1 created
            conn.execute(text("ALTER TABLE ledger DROP COLUMN section"))
            conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    with Store.open(path) as store:
        assert store.schema_version == 2
        loaded = store.load_digest(digest.digest_id)
        assert [(s.paper.uid, s.score, s.section) for s in loaded.papers] == [(uid, 2.5, None)]
        again = store.create_digest(
            "bob",
            D1,
            [Scored(store.get_papers([uid])[0], 1.0, (), "ssm")],
            [],
            ["email"],
            None,
            NOW,
        )
        assert store.load_digest(again.digest_id).papers[0].section == "ssm"


def test_store_in_an_unwritable_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store's folder"):
        Store.open(blocker / "sub" / "s.db")


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


def test_title_and_id_rows_are_merged_with_their_ledger(store):
    # Seen once by title and once (under another title spelling) by id: two rows.
    title_row = store.upsert_papers([paper("Deep Nets Are Shallow")], D0, NOW).uids[0]
    id_row = store.upsert_papers(
        [paper("Deep nets are shallow, really", "2402.00002")], D0, NOW
    ).uids[0]
    assert title_row != id_row
    sp = store.get_papers([title_row])[0]
    store.create_digest("alice", D0, [Scored(sp, 1.0)], [], ["email"], None, NOW)
    # A listing that carries both the id and the first title joins them.
    merged = store.upsert_papers([paper("Deep Nets Are Shallow", "2402.00002")], D1, NOW)
    assert merged.new == 0
    assert store.get_papers([title_row]) == [] or store.get_papers([id_row]) == []
    survivor = merged.uids[0]
    assert store.find_paper("Deep Nets Are Shallow").uid == survivor
    assert store.find_paper("2402.00002").uid == survivor
    # alice was offered the title row: she is not offered the merged paper again.
    assert store.pending_papers("alice", D1, D0) == []


def test_same_title_with_a_different_arxiv_id_is_a_different_paper(store):
    a = store.upsert_papers([paper("Attention Is All You Need", "1706.03762")], D0, NOW).uids[0]
    b = store.upsert_papers([paper("Attention Is All You Need", "2501.99999")], D0, NOW).uids[0]
    assert a != b


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


def test_pending_window_follows_the_last_digest(store):
    store.register_subscriber("alice", D0)
    uids0 = store.upsert_papers([paper("Day zero")], D0, NOW).uids
    assert [p.uid for p in store.pending_papers("alice", D0, D0)] == uids0
    sp = store.get_papers(uids0)
    store.create_digest("alice", D0, [Scored(sp[0], 1.0)], [], ["email"], None, NOW)
    uids1 = store.upsert_papers([paper("Day one"), paper("Day one, too")], D1, NOW).uids
    pending = store.pending_papers("alice", D1, D0)
    assert [p.uid for p in pending] == uids1
    # Re-running an earlier day offers nothing new.
    assert store.pending_papers("alice", D0, D0) == []


def test_new_subscribers_get_only_recent_papers_unless_backfilled(store):
    store.upsert_papers([paper("Old news")], D0, NOW)
    fresh = store.upsert_papers([paper("Fresh")], D2, NOW).uids
    joined = store.register_subscriber("bob", D2)
    assert [p.uid for p in store.pending_papers("bob", D2, joined)] == fresh
    assert len(store.pending_papers("bob", D2, joined, backfill_days=2)) == 2


def test_considered_papers_are_not_offered_again(store):
    uids = store.upsert_papers([paper("Chosen"), paper("Not chosen")], D0, NOW).uids
    chosen, other = store.get_papers(uids)
    digest = store.create_digest(
        "alice", D0, [Scored(chosen, 2.0)], [Scored(other, 0.0)], ["email", "feed"], None, NOW
    )
    assert store.pending_papers("alice", D1, D0) == []
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
    loaded = store.load_digest(digest.digest_id)
    assert [s.paper.uid for s in loaded.papers] == [chosen.uid]
    assert [f.scored.paper.uid for f in store.feed_items("alice", 10)] == [chosen.uid]


def test_second_digest_of_a_day_gets_the_next_sequence(store):
    a = store.upsert_papers([paper("Morning")], D0, NOW).uids
    first = store.create_digest(
        "alice", D0, [Scored(store.get_papers(a)[0], 1.0)], [], ["page"], None, NOW
    )
    b = store.upsert_papers([paper("Afternoon")], D0, NOW).uids
    assert [p.uid for p in store.pending_papers("alice", D0, D0)] == b
    second = store.create_digest(
        "alice", D0, [Scored(store.get_papers(b)[0], 1.0)], [], ["page"], None, NOW
    )
    assert (first.seq, second.seq) == (1, 2)
    assert (first.slug, second.slug) == ("2026-03-13", "2026-03-13-2")


def test_dry_run_sees_its_own_writes_and_leaves_nothing(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as real:
        real.upsert_papers([paper("Kept")], D0, NOW)
    with Store.open(path, dry_run=True) as dry:
        uids = dry.upsert_papers([paper("Only in the dry run")], D1, NOW).uids
        assert dry.get_papers(uids)[0].paper.title == "Only in the dry run"
        dry.create_digest(
            "alice", D1, [Scored(dry.get_papers(uids)[0], 1.0)], [], ["email"], None, NOW
        )
        run_id = dry.start_run(D1, NOW)
        dry.finish_run(run_id, "ok", {}, NOW)
    with Store.open(path) as after:
        summary = after.summary()
        assert summary.papers == 1
        assert summary.subscribers == [] and summary.runs == []


def test_cursor_round_trip(store):
    assert store.get_cursor("hf") == {}
    store.set_cursor("hf", {"etag": "abc", "last": "2026-03-13"}, NOW)
    store.set_cursor("hf", {"etag": "def"}, NOW)
    assert store.get_cursor("hf") == {"etag": "def"}


def test_papers_round_trip_through_json(store):
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


def test_runs_left_running_by_a_dead_process_become_interrupted(store):
    crashed = store.start_run(D0, NOW)
    current = store.start_run(D1, NOW)
    statuses = {r["id"]: r["status"] for r in store.last_runs()}
    assert statuses == {crashed: "interrupted", current: "running"}


def test_datetimes_come_back_aware_in_utc(store):
    store.start_run(D0, datetime(2026, 3, 13, 8, 0, tzinfo=UTC).astimezone())
    started = store.last_runs()[0]["started_at"]
    assert started == "2026-03-13T08:00:00+00:00"
    with pytest.raises(Exception, match="naive datetime"):
        store.start_run(D0, NOW.replace(tzinfo=None))
