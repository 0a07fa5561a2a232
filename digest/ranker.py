"""Ranking inside a run: the bridge between the store and the pure ranking code.

It builds the run's corpus once (the store's recent papers, the background for document
frequencies, plus any older candidate), turns a subscriber's settings into a Profile,
looks up the papers it liked and those it rated (read for a batch of readers at once:
a paper rated up counts as liked, one rated down lowers similar papers), and ranks.
Shared by `digest run`, `preview` and `explain`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from digest.config import Config, SubscriberSettings
from digest.errors import StoreError
from digest.meaning import Semantic, queries_of, semantic_of
from digest.models import StoredPaper
from digest.rank import DEFAULT_WEIGHTS, Corpus, Profile, Ranking, Term
from digest.rank.expand import expand
from digest.rank.learn import BACKGROUND, Taste
from digest.rank.score import Request, rank_many, terms_of
from digest.rank.similar import latest_before, neighbours
from digest.readers import config_reader
from digest.store import Store
from digest.workers import map_in_processes

log = logging.getLogger("digest")

BACKGROUND_DAYS = 30  # recent enough to say what is common in the field now
BACKGROUND_LIMIT = 5_000  # plenty for document frequencies; keeps a run's analysis cheap


def profile_of(subscriber: SubscriberSettings) -> Profile:
    """The Profile of a subscriber's settings (terms were validated with the config)."""
    return Profile.build(
        keywords=[_spec(k) for k in subscriber.keywords],
        interests=[(i.name, [_spec(k) for k in i.keywords]) for i in subscriber.interests],
        exclude=subscriber.exclude,
        require=subscriber.require,
        authors=subscriber.authors,
        categories=subscriber.categories,
        category_mode=subscriber.category_mode,
        sources=subscriber.sources,
        liked=subscriber.liked,
        popularity_weight=subscriber.popularity_weight,
        min_score=subscriber.min_score,
        max_papers=subscriber.max_papers,
    )


def listing_days(previous: date | None, today: date) -> int:
    """How many listing days a digest of ``today`` covers: the weekdays (arXiv announces
    Monday to Friday) since the subscriber's previous digest, at least one.

    Each gets its own ``max_papers``: after days of downtime, the papers of every missed
    day arrive at once, and one day's budget would keep only the top few of them, the rest
    never offered again. A Monday after a Friday covers one day, as does a weekend run.
    """
    if previous is None or previous >= today:
        return 1
    days = (previous + timedelta(days=n) for n in range(1, (today - previous).days + 1))
    return max(1, sum(1 for d in days if d.weekday() < 5))


def _spec(keyword: object) -> object:
    dump = getattr(keyword, "model_dump", None)
    return dump() if dump else keyword


class Ranker:
    """Ranks candidates for subscribers of one run against one shared corpus."""

    def __init__(
        self,
        store: Store,
        today: date,
        pool: Sequence[StoredPaper] = (),
        semantic: Semantic | None = None,
        whole_digest: Collection[str] = (),
        keep_tastes_at: datetime | None = None,
    ) -> None:
        """``pool``: the papers this run will rank (so the corpus is built once, with them).
        ``semantic``: blend in closeness in meaning (``[semantic]``), or None.
        ``whole_digest``: readers whose ``max_papers`` is for the whole digest however many
        listing days it covers (weekly readers: the best of the week, not seven days' worth).
        ``keep_tastes_at``: keep the models of ratings fitted here in the store, as of
        then (a run does; previews and explanations only read the kept ones)."""
        self.store = store
        self.keep_tastes_at = keep_tastes_at
        self.whole_digest = frozenset(whole_digest)
        self.today = today
        self.semantic = semantic
        since = today - timedelta(days=BACKGROUND_DAYS)
        background = {p.uid: p for p in store.recent_papers(since, BACKGROUND_LIMIT)}
        background.update({p.uid: p for p in pool})
        self._corpus = Corpus(sorted(background.values(), key=lambda p: p.uid))
        self._profiles: dict[int, tuple[SubscriberSettings, Profile]] = {}
        self._last_digest: dict[str, date | None] = {}  # for the catch-up budget
        self._covered: dict[int, Sequence[StoredPaper]] = {}  # lists known to be in it
        self._votes: dict[str, dict[int, int]] = {}  # reader -> paper uid -> +1 or -1
        self._rated: dict[int, StoredPaper] = {}  # the papers those votes are for
        self._tastes: dict[str, Taste] = {}  # reader -> the model of its ratings, kept

    @classmethod
    def for_reader(
        cls,
        config: Config,
        store: Store,
        today: date,
        reader: SubscriberSettings,
        pool: Sequence[StoredPaper],
    ) -> Ranker:
        """A Ranker for one reader (of the config or the store), ranking as a run would:
        with the config's semantic matching, and a weekly store reader's budget for its
        whole digest (see ``ReaderState.budget_is_whole_digest``)."""
        stored = None if config_reader(config, reader.name) else store.get_subscriber(reader.name)
        weekly = stored is not None and stored.state.budget_is_whole_digest
        return cls(
            store, today, pool, semantic_of(config), whole_digest={reader.name} if weekly else ()
        )

    def corpus_for(self, candidates: Sequence[StoredPaper]) -> Corpus:
        if self._covered.get(id(candidates)) is candidates:  # a list many readers share
            return self._corpus
        missing = [p for p in candidates if p not in self._corpus]
        if missing:  # candidates older than the background (after long downtime)
            self._corpus = Corpus([*self._corpus.papers, *missing])
        self._covered[id(candidates)] = candidates
        return self._corpus

    def liked(self, subscriber: SubscriberSettings) -> tuple[list[StoredPaper], list[str]]:
        """The stored papers the subscriber liked, and warnings for those not found."""
        found, warnings = [], []
        for ref in subscriber.liked:
            paper = self.store.find_paper(ref)
            if paper is None:
                warnings.append(f"liked paper {ref!r} is not in the store (yet); it is ignored")
            else:
                found.append(paper)
        return found, warnings

    def rated(self, subscriber: SubscriberSettings) -> tuple[list[StoredPaper], list[StoredPaper]]:
        """The papers the subscriber rated up, and those rated down (read by
        ``_read_votes``), in the order they were stored."""
        votes = self._votes.get(subscriber.name) or {}
        papers = [
            (self._rated[uid], vote) for uid, vote in sorted(votes.items()) if uid in self._rated
        ]
        return [p for p, vote in papers if vote > 0], [p for p, vote in papers if vote < 0]

    def _read_votes(self, subscribers: Sequence[SubscriberSettings]) -> None:
        """Read, for those not read yet, every vote of these subscribers and the papers
        they are for: a query for the batch, not one per reader."""
        names = [s.name for s in subscribers if s.name not in self._votes]
        if not names:
            return
        found = self.store.votes_of(names)
        missing = {uid for votes in found.values() for uid in votes} - self._rated.keys()
        self._rated.update((p.uid, p) for p in self.store.get_papers(sorted(missing)))
        self._votes.update((name, found.get(name, {})) for name in names)
        rated = [name for name in names if found.get(name)]
        self._tastes.update(self.store.tastes_of(rated) if rated else {})

    def request(
        self, subscriber: SubscriberSettings, candidates: Sequence[StoredPaper]
    ) -> tuple[Request, list[str]]:
        """What ranking the subscriber takes: its profile, its liked papers (the config's,
        then those it rated up) and those it rated down; and warnings about its settings."""
        liked, warnings = self.liked(subscriber) if subscriber.liked else ([], [])
        up, down = self.rated(subscriber)
        known = {p.uid for p in liked}
        rated = [p for p in up if p.uid not in known]
        request = Request(
            self.profile(subscriber),
            candidates,
            [*liked, *rated],
            frozenset(p.uid for p in rated),
            down,
            self._tastes.get(subscriber.name),
        )
        return request, warnings

    def rank(
        self, subscriber: SubscriberSettings, candidates: Sequence[StoredPaper]
    ) -> tuple[Ranking, list[str]]:
        """One subscriber's ranking, and warnings about its settings (see ``rank_many``)."""
        return self.rank_many([(subscriber, candidates)])[0]

    def prepare(
        self, owed: Sequence[tuple[SubscriberSettings, Sequence[StoredPaper]]], processes: int = 1
    ) -> None:
        """Analyse every term these subscribers use, once, spread over ``processes``
        (forked: they share the corpus), expand every interest with its related words
        (rank.expand) and find each candidate list's closest papers, so that worker
        processes forked afterwards find them all done."""
        self._read_last_digests([s for s, _candidates in owed])
        for _subscriber, candidates in owed:
            self.corpus_for(candidates)
        corpus = self._corpus
        requests = [Request(self.profile(s), candidates) for s, candidates in owed]
        self._analyse(terms_of(requests), processes)
        # Each interest's related words, once for the run, and then their statistics.
        interests = [i for request in requests for i in request.profile.interests]
        related = expand(corpus, interests, DEFAULT_WEIGHTS)
        self._analyse(list({t.identity: t for r in related for t in r.terms}.values()), processes)
        # Each candidate list's closest papers (score regularisation), found once here.
        for candidates in {id(c): c for _subscriber, c in owed if c}.values():
            neighbours(corpus, candidates, DEFAULT_WEIGHTS.neighbour_count)

    def encode(self, owed: Sequence[tuple[SubscriberSettings, Sequence[StoredPaper]]]) -> None:
        """With semantic matching, every vector these subscribers' rankings will ask for,
        read from the store or encoded now (after ``prepare``, before worker processes
        fork, so that they find them all in memory and none encodes a paper twice): the
        candidates, each reader's queries, and for readers who rated papers up, their
        rated papers and the latest papers their model takes as weak negatives."""
        semantic = self.semantic
        if semantic is None:
            return
        self._read_votes([s for s, _candidates in owed])
        needed = {p.uid: p for _subscriber, candidates in owed for p in candidates}
        backgrounds: set[int] = set()  # candidate lists whose background is in
        queries: list[str] = []
        for subscriber, candidates in owed:
            if not candidates:
                continue
            queries += queries_of(subscriber, self.profile(subscriber))
            up, down = self.rated(subscriber)
            if not up:
                continue
            needed.update((p.uid, p) for p in (*up, *down))
            if id(candidates) not in backgrounds:
                backgrounds.add(id(candidates))
                corpus = self.corpus_for(candidates)
                latest = latest_before(corpus.papers, candidates, BACKGROUND)
                needed.update((p.uid, p) for p in latest)
        semantic.vectors(self.store, list(needed.values()))
        semantic.queries(queries)

    def _keep_tastes(self, fitted: dict[str, Taste]) -> None:
        """Remember the models just fitted (this run ranks with them again, in a preview
        or a retry) and, for a run, keep them in the store for the next runs."""
        self._tastes.update(fitted)
        if fitted and self.keep_tastes_at is not None:
            try:
                self.store.keep_tastes(fitted, self.keep_tastes_at)
            except (StoreError, SQLAlchemyError) as exc:  # a cache: never worth a digest
                log.warning(
                    "could not keep %d models of ratings (fitted again next run): %s",
                    len(fitted),
                    exc,
                )

    def _analyse(self, terms: list[Term], processes: int) -> None:
        corpus = self._corpus
        todo = corpus.missing(terms)
        corpus.remember(
            todo, map_in_processes(processes, lambda share: [corpus.stats(t) for t in share], todo)
        )

    def profile(self, subscriber: SubscriberSettings) -> Profile:
        """The subscriber's Profile (made once per run), with ``max_papers`` for each
        listing day its digest covers (see ``listing_days``)."""
        found = self._profiles.get(id(subscriber))
        if found is None or found[0] is not subscriber:
            self._read_last_digests([subscriber])
            days = (
                1
                if subscriber.name in self.whole_digest
                else listing_days(self._last_digest[subscriber.name], self.today)
            )
            profile = profile_of(subscriber)
            if days > 1:
                profile = dataclasses.replace(profile, max_papers=profile.max_papers * days)
            found = self._profiles[id(subscriber)] = (subscriber, profile)
        return found[1]

    def _read_last_digests(self, subscribers: Sequence[SubscriberSettings]) -> None:
        """Read, for those not read yet, the date of each subscriber's latest digest."""
        names = [s.name for s in subscribers if s.name not in self._last_digest]
        if names:
            found = self.store.last_digest_dates(names)
            self._last_digest.update((name, found.get(name)) for name in names)

    def rank_many(
        self, owed: Sequence[tuple[SubscriberSettings, Sequence[StoredPaper]]]
    ) -> list[tuple[Ranking, list[str]]]:
        """``rank`` for many subscribers at once: readers owed the same list of papers
        are scored together (see rank.score)."""
        requests, notes = [], []
        self._read_last_digests([s for s, _candidates in owed])
        self._read_votes([s for s, _candidates in owed])
        for subscriber, candidates in owed:
            request, warnings = self.request(subscriber, candidates)
            for warning in warnings:
                log.warning("%s: %s", subscriber.name, warning)
            self.corpus_for(candidates)
            requests.append(request)
            notes.append(warnings)
        semantic = self.semantic
        meanings = (
            None if semantic is None else (lambda papers: semantic.vectors(self.store, papers))
        )
        features = "tfidf" if semantic is None else f"tfidf+{semantic.encoder.name}"
        rankings = rank_many(requests, self._corpus, meanings=meanings, features=features)
        self._keep_tastes(
            {s.name: r.fitted for (s, _c), r in zip(owed, rankings, strict=True) if r.fitted}
        )
        if self.semantic is not None:
            rankings = [
                self.semantic.blend(self.store, self._corpus, subscriber, request.profile, ranking)
                for (subscriber, _candidates), request, ranking in zip(
                    owed, requests, rankings, strict=True
                )
            ]
        return list(zip(rankings, notes, strict=True))
