"""A synthetic but arXiv-like workload: papers, subscriber profiles, and a pre-filled store.

Deterministic for a seed. Papers get titles of 6-16 words and abstracts of 120-240 words
drawn Zipf-like from a research vocabulary, with 1-3 topic phrases planted in each; 2-12
authors from a pool where a few names are prolific; 1-3 categories with cs.LG, cs.CV and
cs.CL the most common, as on arXiv.

Topics: 75 well-known ones and a long tail of 4,000 more (two- and three-word phrases of
the vocabulary), popular by a Zipf law, so that a few topics are everyone's and most are
a few readers' own, as in a real deployment. Profiles have 3-20 keywords drawn from the
same law (phrases, single words, some weighted, quoted or with a wildcard), a third of
them exclusions, one in ten named interests (digest sections), one in ten followed
authors and one in twenty a category filter.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from digest.models import Paper
from digest.store import Store
from digest.store.papers import keys_of
from digest.store.schema import (
    deliveries,
    digests,
    ledger,
    paper_keys,
    papers,
    ratings,
    subscribers,
)

TOPICS = [
    "linear attention", "state space model", "mixture of experts", "diffusion model", "video generation",
    "image generation", "text-to-image", "reinforcement learning", "policy gradient", "graph neural network",
    "knowledge distillation", "model compression", "quantization", "pruning", "sparse attention",
    "kv cache", "speculative decoding", "chain-of-thought", "mathematical reasoning", "code generation",
    "program synthesis", "retrieval-augmented generation", "vision transformer", "contrastive learning",
    "self-supervised learning", "federated learning", "differential privacy", "adversarial robustness",
    "out-of-distribution detection", "uncertainty estimation", "bayesian optimization", "neural architecture search",
    "protein structure prediction", "molecular generation", "time series forecasting", "anomaly detection",
    "recommender system", "speech recognition", "machine translation", "question answering",
    "instruction tuning", "preference optimization", "reward model", "multi-agent system", "world model",
    "robot manipulation", "autonomous driving", "3d reconstruction", "neural radiance field", "gaussian splatting",
    "point cloud", "semantic segmentation", "object detection", "optical flow", "medical imaging",
    "tabular data", "causal inference", "continual learning", "meta-learning", "few-shot learning",
    "low-rank adaptation", "parameter-efficient fine-tuning", "scaling law", "in-context learning",
    "mechanistic interpretability", "sparse autoencoder", "hallucination", "long context", "token pruning",
    "test-time compute", "curriculum learning", "data augmentation", "optimal transport", "flow matching",
]  # fmt: skip
WORDS = [
    "model",
    "models",
    "learning",
    "method",
    "methods",
    "data",
    "training",
    "network",
    "networks",
    "neural",
    "deep",
    "task",
    "tasks",
    "performance",
    "results",
    "approach",
    "framework",
    "propose",
    "proposed",
    "show",
    "experiments",
    "benchmark",
    "benchmarks",
    "large",
    "language",
    "vision",
    "efficient",
    "efficiency",
    "scalable",
    "robust",
    "accurate",
    "accuracy",
    "novel",
    "new",
    "existing",
    "previous",
    "prior",
    "state",
    "art",
    "representation",
    "representations",
    "feature",
    "features",
    "layer",
    "layers",
    "attention",
    "transformer",
    "transformers",
    "inference",
    "optimization",
    "objective",
    "loss",
    "function",
    "gradient",
    "gradients",
    "parameter",
    "parameters",
    "architecture",
    "generation",
    "generative",
    "sample",
    "samples",
    "sampling",
    "distribution",
    "distributions",
    "space",
    "latent",
    "embedding",
    "embeddings",
    "graph",
    "graphs",
    "node",
    "nodes",
    "edge",
    "signal",
    "image",
    "images",
    "video",
    "videos",
    "text",
    "texts",
    "token",
    "tokens",
    "sequence",
    "sequences",
    "memory",
    "compute",
    "cost",
    "costs",
    "speed",
    "faster",
    "lower",
    "higher",
    "improve",
    "improves",
    "improved",
    "improvement",
    "evaluation",
    "dataset",
    "datasets",
    "real",
    "world",
    "synthetic",
    "theoretical",
    "analysis",
    "bound",
    "bounds",
    "convergence",
    "guarantee",
    "guarantees",
    "algorithm",
    "algorithms",
    "problem",
    "problems",
    "setting",
    "settings",
    "agent",
    "agents",
    "policy",
    "policies",
    "reward",
    "environment",
    "simulation",
    "physical",
    "scientific",
    "medical",
    "clinical",
    "domain",
    "domains",
    "transfer",
    "adaptation",
    "fine",
    "tuning",
    "pretrained",
    "pretraining",
    "instruction",
    "reasoning",
    "step",
    "steps",
    "chain",
    "solve",
    "solution",
    "solutions",
    "error",
    "errors",
    "noise",
    "noisy",
    "structure",
    "structured",
    "sparse",
    "dense",
    "low",
    "rank",
    "matrix",
    "matrices",
    "kernel",
    "kernels",
    "linear",
    "nonlinear",
    "scale",
    "scaling",
    "context",
    "window",
    "retrieval",
    "knowledge",
    "alignment",
    "human",
    "preference",
    "safety",
    "privacy",
    "fairness",
    "bias",
    "interpretability",
    "explanation",
    "explanations",
    "uncertainty",
    "calibration",
    "estimation",
    "prediction",
    "predictions",
    "forecasting",
    "temporal",
    "spatial",
    "multimodal",
    "cross",
    "modal",
    "audio",
    "speech",
    "language",
    "code",
    "program",
    "programs",
    "math",
    "mathematical",
    "logic",
]
GLUE = [
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "for",
    "with",
    "on",
    "we",
    "that",
    "is",
    "by",
    "this",
    "our",
    "an",
    "as",
    "are",
    "from",
    "which",
    "can",
    "be",
    "it",
]
FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "John", "Leslie", "Tony", "Frances", "Ken", "Dennis", "Margaret", "Radia", "Sophie", "Yann", "Geoffrey", "Yoshua", "Fei", "Andrew", "Daphne", "Jürgen", "Ilya", "Oriol", "Demis", "Shakir", "Rich", "Chelsea", "Percy", "Tatsu", "Kaiming", "Ross", "Piotr", "Ashish", "Noam", "Jakob", "Llion", "Aidan", "Łukasz", "Niki", "Mei", "Kenji", "Priya", "Amara", "Jonas", "Samuel", "Noor", "Hannah", "Diego", "Rosa", "Tomás", "Lena"]  # fmt: skip
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "McCarthy", "Lamport", "Hoare", "Allen", "Thompson", "Ritchie", "Hamilton", "Perlman", "Wilson", "LeCun", "Hinton", "Bengio", "Li", "Ng", "Koller", "Schmidhuber", "Sutskever", "Vinyals", "Hassabis", "Mohamed", "Sutton", "Finn", "Liang", "Hashimoto", "He", "Girshick", "Dollár", "Vaswani", "Shazeer", "Uszkoreit", "Jones", "Gomez", "Kaiser", "Parmar", "Chen", "Watanabe", "Natarajan", "Okafor", "Berg", "Adeyemi", "Haddad", "Schmidt", "Fernández", "Almeida", "Ribeiro", "Hoffmann"]  # fmt: skip
CATEGORIES = [("cs.LG", 30), ("cs.CV", 20), ("cs.CL", 15), ("cs.AI", 10), ("stat.ML", 5), ("cs.RO", 4), ("eess.IV", 3), ("cs.IR", 3), ("q-bio.QM", 2), ("math.OC", 2), ("cs.NE", 2), ("cs.CR", 2), ("eess.AS", 2)]  # fmt: skip


LONG_TAIL = 4000


def _long_tail(seed: int) -> list[str]:
    """Made-up but plausible topic phrases ("sparse latent graph"), none of them in TOPICS."""
    r = random.Random(seed)
    content = [w for w in WORDS if len(w) > 3]
    found: dict[str, None] = {}
    while len(found) < LONG_TAIL:
        phrase = " ".join(r.sample(content, k=r.choice([2, 2, 2, 3])))
        if phrase not in TOPICS:
            found[phrase] = None
    return list(found)


class Workload:
    def __init__(self, seed: int = 7) -> None:
        self.random = random.Random(seed)
        weights = [1 / (rank + 1) ** 0.9 for rank in range(len(WORDS))]
        self._word_weights = weights
        self.topics = TOPICS + _long_tail(seed)
        self._topic_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(self.topics))]
        self._authors = [f"{f} {l}" for f in FIRST for l in LAST]  # noqa: E741
        self._author_weights = [1 / (i + 1) ** 0.6 for i in range(len(self._authors))]

    # --- papers -------------------------------------------------------------------------------

    def _words(self, n: int) -> list[str]:
        body = self.random.choices(WORDS, weights=self._word_weights, k=n)
        for i in range(0, n, 3):
            body.insert(i, self.random.choice(GLUE))
        return body

    def _topics(self, k: int) -> list[str]:
        """``k`` distinct topics, popular ones more often."""
        found: dict[str, None] = {}
        while len(found) < k:
            found.update(dict.fromkeys(self.random.choices(self.topics, self._topic_weights, k=k)))
        return list(found)[:k]

    def paper(self, number: int, day: date) -> Paper:
        r = self.random
        topics = self._topics(r.choice([1, 1, 2, 2, 3]))
        title_words = self._words(r.randint(4, 12))
        title_words.insert(r.randrange(len(title_words) + 1), topics[0])
        abstract = self._words(r.randint(100, 200))
        for topic in topics:
            for _ in range(r.randint(1, 3)):
                abstract.insert(r.randrange(len(abstract) + 1), topic)
        title = " ".join(title_words)
        categories = r.choices(
            [c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES], k=r.randint(1, 3)
        )
        return Paper.from_source(
            title=title[:1].upper() + title[1:],
            abstract=" ".join(abstract).capitalize() + ".",
            arxiv_id=f"{day:%y%m}.{number % 100000:05d}",
            authors=tuple(
                dict.fromkeys(
                    r.choices(self._authors, weights=self._author_weights, k=r.randint(2, 12))
                )
            ),
            categories=tuple(dict.fromkeys(categories)),
            published=day,
            upvotes=int(r.paretovariate(1.5)) - 1,
        )

    def daily_papers_json(self, count: int, day: date, first_number: int = 1) -> bytes:
        """Today's papers as a Hugging Face daily_papers response (what ingest parses)."""
        items = []
        for number in range(first_number, first_number + count):
            paper = self.paper(number, day)
            items.append(
                {
                    "paper": {
                        "id": paper.arxiv_id,
                        "title": paper.title_raw,
                        "summary": paper.abstract_raw,
                        "authors": [{"name": a, "hidden": False} for a in paper.authors],
                        "publishedAt": f"{day.isoformat()}T00:00:00.000Z",
                        "submittedOnDailyAt": f"{day.isoformat()}T00:00:00.000Z",
                        "upvotes": paper.upvotes,
                    },
                    "numComments": 0,
                }
            )
        return json.dumps(items).encode()

    # --- subscribers ----------------------------------------------------------------------------

    def profile(self, number: int) -> dict[str, object]:
        r = self.random
        profile: dict[str, object] = {
            "name": f"reader{number:05d}",
            "email": f"reader{number:05d}@example.org",
        }
        if r.random() < 0.1:  # named interests: the digest gets sections
            profile["interests"] = [
                {"name": f"Interest {k + 1}", "keywords": self._keywords(r.randint(2, 8))}
                for k in range(r.randint(2, 3))
            ]
        else:
            profile["keywords"] = self._keywords(r.randint(3, 20))
        if r.random() < 0.33:
            profile["exclude"] = r.sample(
                ["survey", "benchmark", "medical", "privacy", "robot"], k=r.randint(1, 3)
            )
        if r.random() < 0.1:
            profile["authors"] = r.sample(self._authors[:200], k=r.randint(1, 3))
        if r.random() < 0.05:
            profile["categories"] = r.sample([c for c, _ in CATEGORIES[:6]], k=2)
        return profile

    def _keywords(self, k: int) -> list[str]:
        r = self.random
        keywords = []
        for topic in self._topics(k):
            roll = r.random()
            if roll < 0.1:  # one word of it, alone
                topic = r.choice(topic.split())
            elif roll < 0.15 and topic.isalpha() and len(topic) > 6:
                topic = topic[: len(topic) - 3] + "*"
            elif roll < 0.2:
                topic = f'"{topic}"'
            if r.random() < 0.1:
                topic = f"{topic}^2"
            keywords.append(topic)
        return list(dict.fromkeys(keywords))

    def config_toml(
        self,
        subscribers: int,
        channels: list[str],
        inbox: str = "inbox/*",
        workers: int | str = "auto",
        store_url: str | None = None,
        links_secret_env: str | None = None,
        semantic: bool = False,
    ) -> str:
        """The config of the workload; ``links_secret_env``: sign reader links with the
        secret in that variable (and a public base URL), as a site with reader pages does;
        ``semantic``: semantic matching on, with the packaged model."""
        lines = [
            'timezone = "UTC"',
            "[run]",
            f"workers = {json.dumps(workers)}",
            "[store]",
            'path = "digest.db"',
            *([f"url = {json.dumps(store_url)}"] if store_url else []),
            "[output]",
            'dir = "out"',
            *(['base_url = "https://digest.example.org"'] if links_secret_env else []),
            *(
                ["[web]", f"secret_env = {json.dumps(links_secret_env)}"]
                if links_secret_env
                else []
            ),
            *(["[semantic]"] if semantic else []),
            "[[sources]]",
            'name = "daily"',
            'kind = "file"',
            f'path = "{inbox}"',
        ]
        for number in range(1, subscribers + 1):
            profile = self.profile(number)
            interests = profile.pop("interests", [])
            lines.append("[[subscribers]]")
            lines += [
                f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in profile.items()
            ]
            lines.append(f"channels = {json.dumps(channels)}")
            for interest in interests:
                assert isinstance(interest, dict)
                lines.append("[[subscribers.interests]]")
                lines.append(f"name = {json.dumps(interest['name'])}")
                lines.append(f"keywords = {json.dumps(interest['keywords'])}")
        return "\n".join(lines) + "\n"

    # --- a store that already holds years of papers ---------------------------------------------

    def fill_store(self, store: Path | str, count: int, until: date, batch: int = 20_000) -> None:
        """Insert ``count`` old papers (and their keys) straight into a new store, in bulk."""
        now = datetime.now(UTC)
        with Store.open(store) as opened, opened.transaction() as conn:
            for start in range(0, count, batch):
                papers_rows, key_rows = [], []
                for number in range(start, min(count, start + batch)):
                    # Four years, oldest first: ids grow with dates, as in a real store.
                    day = until - timedelta(days=1 + (count - 1 - number) * 1460 // max(count, 1))
                    paper = self._old_paper(number, day)
                    papers_rows.append(_paper_row(number + 1, paper, day, now))
                    key_rows += [{"key": key, "paper_id": number + 1} for key in keys_of(paper)]
                conn.execute(insert(papers), papers_rows)
                conn.execute(insert(paper_keys), key_rows)

    def fill_history(
        self, store: Path | str, readers: int, days: int, until: date, batch: int = 50_000
    ) -> None:
        """Give readers 1 to ``readers`` a digest on each of the ``days`` before ``until``,
        as a deployment that has run that long holds them: the digest with its watermark
        (the highest paper stored by its day), three chosen papers of that day in the
        ledger, and its email delivered. Needs the papers of ``fill_store``."""
        now = datetime.now(UTC)
        first = until - timedelta(days=days)
        names = [f"reader{number:05d}" for number in range(1, readers + 1)]
        with Store.open(store) as opened, opened.transaction() as conn:
            conn.execute(insert(subscribers), [{"name": n, "created_on": first} for n in names])
            highest = dict(
                conn.execute(
                    select(papers.c.first_seen, func.max(papers.c.id))
                    .where(papers.c.first_seen < until)
                    .group_by(papers.c.first_seen)
                ).all()
            )
            mark = max((uid for day, uid in highest.items() if day < first), default=0)
            rows: dict[str, list[dict]] = {"digests": [], "ledger": [], "deliveries": []}
            digest_id = 0
            for day in dates(first, days):
                previous, mark = mark, max(mark, highest.get(day, 0))
                for number, name in enumerate(names):
                    digest_id += 1
                    span = mark - previous  # the papers of the day, by id
                    chosen = (
                        {previous + 1 + (number * 7 + k * 613) % span for k in range(3)}
                        if span
                        else set()
                    )
                    rows["digests"].append(
                        {
                            "id": digest_id,
                            "subscriber": name,
                            "digest_date": day,
                            "seq": 1,
                            "candidates": span,
                            "run_id": None,
                            "created_at": now,
                            "watermark": mark,
                        }
                    )
                    rows["ledger"] += [
                        {
                            "subscriber": name,
                            "paper_id": uid,
                            "digest_id": digest_id,
                            "status": "selected",
                            "position": position,
                            "score": 1.0,
                            "matches": "[]",
                            "section": None,
                        }
                        for position, uid in enumerate(sorted(chosen))
                    ]
                    rows["deliveries"].append(
                        {
                            "digest_id": digest_id,
                            "channel": "email",
                            "status": "done",
                            "attempts": 1,
                            "last_error": None,
                            "delivered_at": now,
                        }
                    )
                if len(rows["digests"]) >= batch:
                    _insert_rows(conn, rows)
            _insert_rows(conn, rows)

    def fill_ratings(
        self, store: Path | str, readers: int, per_reader: int, until: date, pool: int = 500
    ) -> None:
        """Give readers 1 to ``readers`` ``per_reader`` votes each (two up for each down),
        on ``pool`` papers of the week before ``until`` stored for them: readers who rated
        papers of their earlier digests, whose ranking learns from those votes."""
        now = datetime.now(UTC)
        with Store.open(store) as opened, opened.transaction() as conn:
            first = (conn.execute(select(func.max(papers.c.id))).scalar() or 0) + 1
            papers_rows, key_rows = [], []
            for k in range(pool):
                day = until - timedelta(days=1 + k % 7)
                # Numbers far above today's (1, 2, ...): their arXiv ids never meet.
                paper = self.paper(90_000 + k, day)
                papers_rows.append(_paper_row(first + k, paper, day, now))
                key_rows += [{"key": key, "paper_id": first + k} for key in keys_of(paper)]
            conn.execute(insert(papers), papers_rows)
            conn.execute(insert(paper_keys), key_rows)
            votes = []
            for number in range(1, readers + 1):
                rated = self.random.sample(range(pool), k=min(per_reader, pool))
                votes += [
                    {
                        "subscriber": f"reader{number:05d}",
                        "paper_id": first + k,
                        "vote": -1 if i % 3 == 2 else 1,
                        "source": "web",
                        "rated_at": now,
                    }
                    for i, k in enumerate(rated)
                ]
            for start in range(0, len(votes), 50_000):
                conn.execute(insert(ratings), votes[start : start + 50_000])

    def _old_paper(self, number: int, day: date) -> Paper:
        # Cheaper than paper(): old papers only need realistic keys and a modest body.
        title = " ".join(self.random.choices(WORDS, k=8)) + f" {number}"
        arxiv_id = f"{1500 + number // 100_000}.{number % 100_000:05d}"  # never today's ids
        return Paper(title=title, abstract="An older paper.", arxiv_id=arxiv_id, published=day)


def _paper_row(uid: int, paper: Paper, day: date, now: datetime) -> dict:
    """A row of the papers table for ``paper``, first seen on ``day``."""
    return {
        "id": uid,
        "arxiv_id": paper.arxiv_id,
        "title_key": paper.title_key,
        "data": json.dumps(paper.to_json()),
        "first_seen": day,
        "first_seen_at": now,
        "updated_at": now,
    }


def _insert_rows(conn, rows: dict[str, list[dict]]) -> None:  # type: ignore[no-untyped-def]
    """Insert and empty the rows gathered per table, parents first."""
    for table in (digests, ledger, deliveries):
        if rows[table.name]:
            conn.execute(insert(table), rows[table.name])
        rows[table.name] = []


def dates(start: date, days: int) -> Iterator[date]:
    for n in range(days):
        yield start + timedelta(days=n)
