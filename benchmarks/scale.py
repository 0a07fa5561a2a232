"""A full daily run at scale, timed per stage, with a naive baseline measured in the same run.

    python benchmarks/scale.py --papers 2000 --subscribers 10000 [--store-papers 3000000] [--json]
    python benchmarks/scale.py --subscribers 1000 --postgres postgresql://... --runs 2
    python benchmarks/scale.py --subscribers 10000 --rated 10000 --second-day --json

Builds a synthetic, arXiv-like workload (benchmarks/workload.py) in a temporary folder:
today's papers as a Hugging Face daily_papers file, a config with the subscribers, and
optionally a store already holding ``--store-papers`` older papers. Then it runs one
`digest run` (ingest, diff, rank, record, render, write the files) in this process and
reports wall time per stage, papers/s, subscribers/s and peak memory. With ``--runs N``
it starts N `digest run` processes at once on the same store instead (on PostgreSQL:
they share the subscribers). Either way it then checks, in the store and the output
folder, that every subscriber got exactly one digest and every delivered email exists once.
With ``--second-day`` it then runs the next day on as many new papers, with no new
ratings, and reports that run apart (``second_day``): rated readers' models are then read
from the store, not fitted.

The naive baseline, on the same papers and profiles: per (subscriber, paper) pair, a
regular-expression count of every keyword in title and abstract (no shared index), and a
Jinja render of the email with a fresh environment each time (no compiled-template cache).
It runs on a sample of subscribers (``--naive-sample``) and the speed-ups are per
subscriber, measured in this same process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from sqlalchemy import create_engine, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Workload

from digest.config import Config, load_config
from digest.models import Digest
from digest.pipeline import open_store, run_once
from digest.render.context import digest_view
from digest.render.environment import (
    builtin_templates,
    highlight,
    make_environment,
    markdown_escape,
    one_line,
)
from digest.render.inline import email_html, inline_each
from digest.store.schema import deliveries, digests, tastes
from digest.workers import worker_count

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
LINKS_SECRET_ENV = "DIGEST_BENCHMARK_WEB_SECRET"
SECOND_DAY_FIRST = 50_000  # the second day's papers' numbers: ids that day one never has


def naive_rank(profile: dict, papers: list) -> list[tuple[float, int]]:
    """Per pair, a regex count of each keyword: what a simple digest tool does."""
    keywords = [str(k).strip('"').split("^")[0] for k in profile["keywords"]]
    patterns = [re.compile(rf"\b{re.escape(k)}\b", re.IGNORECASE) for k in keywords]
    excludes = [
        re.compile(rf"\b{re.escape(k)}\b", re.IGNORECASE) for k in profile.get("exclude", [])
    ]
    scored = []
    for stored in papers:
        title, abstract = stored.paper.title, stored.paper.abstract
        if any(p.search(title) or p.search(abstract) for p in excludes):
            continue
        score = sum(3 * len(p.findall(title)) + len(p.findall(abstract)) for p in patterns)
        if score:
            scored.append((score, stored.uid))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return scored[:20]


def naive_render(digest: Digest) -> str:
    """The email's HTML with a new Jinja environment every time: nothing compiled is reused."""
    env = Environment(loader=FileSystemLoader(builtin_templates()), autoescape=True, cache_size=0)
    env.filters.update(highlight=highlight, md=markdown_escape, oneline=one_line)
    view = digest_view(digest, generated_at=datetime.now(UTC))
    return env.get_template("email.html.j2").render(digest=view)


def inlined_once_speedup(sampled: list[Digest], repeats: int = 3) -> float:
    """The HTML part made from templates with the CSS inlined once, against rendering it
    and inlining the finished email with css-inline: the same emails both ways, best of
    ``repeats`` alternated passes each."""
    renderer = email_html(make_environment(None))
    assert renderer.inlined is not None, "the built-in templates are inlined once"
    views = [digest_view(d, generated_at=NOW) for d in sampled]
    best = {"each": float("inf"), "once": float("inf")}
    for _ in range(repeats):
        started = time.perf_counter()
        for view in views:
            inline_each(renderer.plain.render(digest=view))
        best["each"] = min(best["each"], time.perf_counter() - started)
        started = time.perf_counter()
        for view in views:
            renderer.inlined.render(digest=view)
        best["once"] = min(best["once"], time.perf_counter() - started)
    return best["each"] / max(best["once"], 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=2000, help="new papers today")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--store-papers", type=int, default=0, help="older papers already stored")
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="days of earlier digests each subscriber already has (needs --store-papers)",
    )
    parser.add_argument(
        "--rated",
        type=int,
        default=0,
        help="readers (the first ones) who rated papers of earlier digests: their ranking "
        "learns from the votes",
    )
    parser.add_argument(
        "--ratings-per-reader", type=int, default=5, help="votes of each --rated reader"
    )
    parser.add_argument(
        "--channels", default="email", help="comma-separated channels per subscriber"
    )
    parser.add_argument(
        "--workers", default="auto", help='worker processes per run: a number, or "auto"'
    )
    parser.add_argument(
        "--postgres",
        default=None,
        help="a PostgreSQL URL: the store is a scratch database made beside it (and dropped)",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="`digest run` processes started at once"
    )
    parser.add_argument(
        "--naive-sample", type=int, default=100, help="subscribers the baseline runs for"
    )
    parser.add_argument(
        "--links",
        action="store_true",
        help="sign reader links (a [web] secret and a base_url): every email and feed "
        "then has manage, unsubscribe and per-paper rating links",
    )
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="semantic matching on ([semantic], the packaged model): papers are encoded in "
        "the run, and rated readers' models learn on the embeddings too",
    )
    parser.add_argument(
        "--second-day",
        action="store_true",
        help="then run the next day too, on as many new papers and no new ratings: rated "
        "readers' models are read from the store instead of fitted (reported apart)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it")
    args = parser.parse_args(argv)
    if args.history_days and not args.store_papers:
        parser.error("--history-days needs --store-papers: the digests cover stored papers")
    if args.second_day and args.runs != 1:
        parser.error("--second-day times one run a day: leave --runs at 1")

    folder = args.keep or Path(tempfile.mkdtemp(prefix="digest-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    with scratch_database(args.postgres) as store_url:
        result = measure(args, folder, store_url)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    return 0 if result["ok"] and result["exactly_once"] else 1


def measure(args: argparse.Namespace, folder: Path, store_url: str | None) -> dict[str, Any]:
    workload = Workload()
    (folder / "inbox").mkdir(exist_ok=True)
    (folder / "inbox" / "daily.json").write_bytes(workload.daily_papers_json(args.papers, TODAY))
    (folder / "config.toml").write_text(
        workload.config_toml(
            args.subscribers,
            args.channels.split(","),
            workers=args.workers if args.workers == "auto" else int(args.workers),
            store_url=store_url,
            links_secret_env=LINKS_SECRET_ENV if args.links else None,
            semantic=args.semantic,
        )
    )
    if args.links:
        os.environ[LINKS_SECRET_ENV] = "benchmark-secret-" + "x" * 32
    if args.store_papers:
        workload.fill_store(store_url or folder / "digest.db", args.store_papers, TODAY)
    if args.history_days:
        workload.fill_history(
            store_url or folder / "digest.db", args.subscribers, args.history_days, TODAY
        )
    if args.rated:
        workload.fill_ratings(
            store_url or folder / "digest.db", args.rated, args.ratings_per_reader, TODAY
        )
    if args.store_papers or args.history_days or args.rated:
        os.sync()  # the fill's gigabytes reach the disk now, not during the measured run

    started = time.perf_counter()
    config = load_config(folder / "config.toml")
    config_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with MemorySampler() as memory:
        if args.runs == 1:
            report = run_once(
                config,
                today=TODAY,
                clock=lambda: NOW,
                detail=False,  # as `digest run` without --json: counts, not every match
            )
            reports = [report.to_json(papers=False)]
        else:
            reports = run_processes(folder / "config.toml", args.runs)
    run_seconds = time.perf_counter() - started
    stages, walls = stage_seconds(reports)
    served = [
        {name for name, sub in found["subscribers"].items() if sub["candidates"]}
        for found in reports
    ]
    workers = worker_count(config.run.workers, len(config.subscribers))

    # The naive baseline, on a sample of the same subscribers and the same papers.
    sample = config.subscribers[: args.naive_sample]
    profiles = [workload_profile(s) for s in sample]
    with open_store(config) as store:
        todays = store.papers_after(0, TODAY, since=TODAY)
        ids = store.conn.execute(
            select(digests.c.id).where(
                digests.c.subscriber.in_([s.name for s in sample]), digests.c.digest_date == TODAY
            )
        )
        sampled = [store.load_digest(row.id) for row in ids]
    naive_rank_per_subscriber = naive_rank_seconds(profiles, todays)
    started = time.perf_counter()
    for digest in sampled:
        naive_render(digest)
    naive_render_per_subscriber = (time.perf_counter() - started) / max(len(sampled), 1)
    html_speedup = inlined_once_speedup(sampled)
    ours_rank_per_subscriber = stages.get("rank", 0.0) / args.subscribers
    ours_email_per_subscriber = stages.get("deliver:email", 0.0) / args.subscribers

    return {
        "papers": args.papers,
        "subscribers": args.subscribers,
        "store_papers": args.store_papers,
        "history_days": args.history_days,
        "rated_readers": args.rated,
        "ratings_per_reader": args.ratings_per_reader if args.rated else 0,
        "store": "postgresql" if store_url else "sqlite",
        "runs": args.runs,
        "workers": workers,
        "channels": args.channels.split(","),
        "links": args.links,
        "semantic": args.semantic,
        # Seconds per stage, added up over runs and worker processes (work, not wall time).
        "stages": stages,
        # Seconds per stage as the clock sees them, per run (workers run side by side).
        "stages_wall": walls[0] if len(walls) == 1 else walls,
        "total_s": round(run_seconds, 3),
        "config_load_s": round(config_seconds, 3),
        # Memory of the runs and their workers together, sampled: their proportional set
        # sizes (a page workers share with the run counts once), at the peak.
        "peak_rss_mb": round(memory.peak_mb, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "papers_per_s": round(args.papers / max(stages.get("ingest", 1e-9), 1e-9), 1),
        "subscribers_per_s": round(args.subscribers / run_seconds, 1),
        "ranking_speedup_vs_naive": round(
            naive_rank_per_subscriber / max(ours_rank_per_subscriber, 1e-9), 1
        ),
        "email_speedup_vs_naive_render": round(
            naive_render_per_subscriber / max(ours_email_per_subscriber, 1e-9), 1
        ),
        "html_speedup_inlined_once_vs_each": round(html_speedup, 2),
        "naive_sample": len(profiles),
        "served_per_run": [len(s) for s in served],
        "served_by_two_runs": len(set.intersection(*served)) if len(served) > 1 else 0,
        "delivered_papers": sum(
            sub["delivered"] for found in reports for sub in found["subscribers"].values()
        ),
        "exactly_once": exactly_once(config, folder),
        "ok": all(found["ok"] for found in reports),
        **(
            {"second_day": next_day(args, workload, folder, config, profiles)}
            if args.second_day
            else {}
        ),
    }


def next_day(
    args: argparse.Namespace,
    workload: Workload,
    folder: Path,
    config: Config,
    profiles: list[dict],
) -> dict[str, Any]:
    """The next day's run: as many new papers, the same readers, no new ratings. Each
    rated reader's model was fitted and kept by the first run, so this one reads it."""
    day, now = TODAY + timedelta(days=1), NOW + timedelta(days=1)
    (folder / "inbox" / "daily-2.json").write_bytes(
        workload.daily_papers_json(args.papers, day, first_number=SECOND_DAY_FIRST)
    )
    started = time.perf_counter()
    with MemorySampler() as memory:
        report = run_once(config, today=day, clock=lambda: now, detail=False)
    run_seconds = time.perf_counter() - started
    reports = [report.to_json(papers=False)]
    stages, walls = stage_seconds(reports)
    with open_store(config) as store:
        todays = store.papers_after(0, day, since=day)
        refitted = store.conn.execute(
            select(func.count()).select_from(tastes).where(tastes.c.fitted_at >= now)
        ).scalar()
        kept = store.conn.execute(select(func.count()).select_from(tastes)).scalar()
    naive = naive_rank_seconds(profiles, todays)
    ours = stages.get("rank", 0.0) / args.subscribers
    return {
        "new_papers": len(todays),
        "stages": stages,
        "stages_wall": walls[0],
        "total_s": round(run_seconds, 3),
        "peak_rss_mb": round(memory.peak_mb, 1),
        # Models of ratings in the store, and how many this run fitted again (none, when
        # no reader rated anything since the first run).
        "models_kept": kept,
        "models_refitted": refitted,
        "ranking_speedup_vs_naive": round(naive / max(ours, 1e-9), 1),
        "delivered_papers": sum(sub["delivered"] for sub in reports[0]["subscribers"].values()),
        "ok": reports[0]["ok"],
    }


def stage_seconds(
    reports: list[dict[str, Any]],
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Seconds per stage added up over runs and workers (the work), and each run's wall
    time per stage: the run's own part, plus its slowest worker's."""
    stages: dict[str, float] = {}
    for found in reports:
        for stage, seconds in found["timings"].items():
            stages[stage] = round(stages.get(stage, 0.0) + seconds, 3)
    walls = []
    for found in reports:
        per_worker = found.get("worker_timings") or [{}]
        walls.append(
            {
                stage: round(
                    seconds
                    - sum(w.get(stage, 0.0) for w in per_worker)
                    + max(w.get(stage, 0.0) for w in per_worker),
                    3,
                )
                for stage, seconds in found["timings"].items()
            }
        )
    return stages, walls


def naive_rank_seconds(profiles: list[dict], papers: list) -> float:
    """The naive baseline's ranking time per subscriber, on these papers."""
    started = time.perf_counter()
    for profile in profiles:
        naive_rank(profile, papers)
    return (time.perf_counter() - started) / len(profiles)


def run_processes(config: Path, runs: int) -> list[dict[str, Any]]:
    """``runs`` real `digest run` processes, started together; their JSON reports."""
    command = [sys.executable, "-m", "digest", "run", "--config", str(config)]
    command += ["--date", TODAY.isoformat(), "--json"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for _ in range(runs)
    ]
    return [json.loads(process.communicate()[0]) for process in processes]


def exactly_once(config: Config, folder: Path) -> bool:
    """Every subscriber has its digest today (several when too large for one email; the
    ledger holds each paper once per subscriber), and each email delivered is one file."""
    with open_store(config) as store:
        made = dict(
            store.conn.execute(
                select(digests.c.subscriber, func.count())
                .where(digests.c.digest_date == TODAY)
                .group_by(digests.c.subscriber)
            ).all()
        )
        sent = store.conn.execute(
            select(func.count())
            .select_from(deliveries.join(digests))
            .where(
                digests.c.digest_date == TODAY,
                deliveries.c.channel == "email",
                deliveries.c.status == "done",
            )
        ).scalar()
    files = sum(1 for _ in (folder / "out" / "email").rglob("*.eml"))
    return min(made.values()) >= 1 and len(made) == len(config.subscribers) and files == sent


@contextmanager
def scratch_database(url: str | None):  # type: ignore[no-untyped-def]
    """A new, empty PostgreSQL database beside ``url`` for the run, dropped afterwards."""
    if not url:
        yield None
        return
    name = f"digest_scale_{os.getpid()}"
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class MemorySampler:
    """Samples, a few times a second, the proportional set size (Linux's PSS) of this
    process and all its descendants, and keeps the largest sum: the memory the runs
    really take, with pages shared by forked workers counted once."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._total_mb())

    @staticmethod
    def _total_mb() -> float:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        family, grew = {os.getpid()}, True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in family} - family
            family |= more
            grew = bool(more)
        total_kb = 0
        for pid in family:
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total_kb += sum(
                int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
            )
        return total_kb / 1024


def workload_profile(subscriber) -> dict:  # type: ignore[no-untyped-def]
    keywords = [k if isinstance(k, str) else k.term for k in subscriber.keywords]
    for interest in subscriber.interests:
        keywords += [k if isinstance(k, str) else k.term for k in interest.keywords]
    return {"keywords": keywords, "exclude": list(subscriber.exclude)}


if __name__ == "__main__":
    sys.exit(main())
