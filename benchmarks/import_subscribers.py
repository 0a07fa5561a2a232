"""Ten thousand readers imported from CSV, then served by one run, timed.

    python benchmarks/import_subscribers.py [--readers 10000] [--workers auto] [--json]

In a temporary folder (``--keep DIR`` keeps it): a config with no ``[[subscribers]]`` and
one ``file`` source reading the sample listings of ``examples/inbox/``; a CSV of
``--readers`` made-up readers (keywords drawn from a small list of machine-learning
topics, by a fixed seed; emails as ``.eml`` files). Then, as a user would, each in its
own process: ``digest subscribers import`` of the CSV, and one ``digest run``. It prints
the wall time of each, and checks in the store and the output folder that every reader
was imported once and every reader with papers got exactly one email.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-03-12"
TOPICS = [
    "linear attention", "state space model", "mamba", "selective scan", "diffusion",
    "video generation", "text-to-image", "retrieval", "long context", "kv cache",
    "quantiz*", "mixture of experts", "speculative decoding", "reinforcement learning",
    "reward model", "preference optimization", "interpretab*", "sparse autoencoder",
    "attention heads", "tokenizer", "multilingual", "speech recognition", "robotics",
    "world model", "graph neural network", "protein", "molecule", "weather forecasting",
    "federated learning", "differential privacy", "benchmark", "evaluation",
    "code generation", "theorem proving", "reasoning", "chain of thought", "agents",
    "tool use", "distillation", "pruning", "low-rank adaptation", "continual learning",
    "contrastive learning", "self-supervised", "vision transformer", "segmentation",
    "3d reconstruction", "neural radiance field", "gaussian splatting", "optical flow",
]  # fmt: skip
EXCLUDES = ["survey", "position paper", "dataset", "workshop"]


def reader_rows(count: int, seed: int = 7) -> list[dict[str, str]]:
    """``count`` made-up readers: 2-6 topics each, a third with an exclusion."""
    pick = random.Random(seed)
    rows = []
    for n in range(count):
        row = {
            "email": f"reader{n:05d}@example.org",
            "keywords": ";".join(pick.sample(TOPICS, pick.randint(2, 6))),
            "exclude": pick.choice(EXCLUDES) if n % 3 == 0 else "",
            "max_papers": str(pick.choice([5, 10, 20])),
            "channels": "email",
        }
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_config(folder: Path, workers: str) -> Path:
    shutil.copytree(REPO / "examples" / "inbox", folder / "inbox")
    workers_value = f'"{workers}"' if workers == "auto" else workers
    config = folder / "config.toml"
    config.write_text(
        'timezone = "UTC"\n[store]\npath = "digest.db"\n[output]\ndir = "out"\n'
        f"[run]\nworkers = {workers_value}\n"
        '[[sources]]\nname = "samples"\nkind = "file"\npath = "inbox/*"\n',
        encoding="utf-8",
    )
    return config


def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "digest", *args], capture_output=True, text=True, cwd=REPO
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"digest {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done


def confirmed_yesterday(store_path: Path) -> None:
    """Readers are first served at their first send hour after they joined; the run
    measured here stands for that one, so the imported readers joined a day earlier."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from digest.store import Store
    from digest.store.schema import readers

    with Store.open(store_path) as store, store.transaction() as conn:
        conn.execute(update(readers).values(confirmed_at=datetime.now(UTC) - timedelta(days=1)))


def measure(folder: Path, readers: int, workers: str) -> dict[str, Any]:
    config = write_config(folder, workers)
    rows = folder / "readers.csv"
    write_csv(rows, reader_rows(readers))
    import_s, imported = timed(["subscribers", "import", str(rows), "-c", str(config)])
    confirmed_yesterday(folder / "digest.db")
    run_s, ran = timed(["run", "--json", "--date", DAY, "-c", str(config)])
    report = json.loads(ran.stdout)
    served = report["subscribers"]
    with_papers = [name for name, entry in served.items() if entry["selected"]]
    emails = {p.parent.name for p in (folder / "out" / "email").glob("*/*.eml")}
    eml_files = len(list((folder / "out" / "email").glob("*/*.eml")))
    stored = json.loads(
        timed(["subscribers", "list", "--json", "-c", str(config)])[1].stdout or "[]"
    )
    return {
        "readers": readers,
        "imported": len(stored),
        "import_s": round(import_s, 2),
        "import_rows_per_s": round(readers / import_s),
        "import_output": imported.stdout.strip(),
        "run_s": round(run_s, 2),
        "run_stages_s": {k: round(v, 2) for k, v in report.get("timings", {}).items()},
        "papers": sum(s["new"] for s in report["sources"].values()),
        "served": len(served),
        "readers_with_papers": len(with_papers),
        "emails_written": eml_files,
        "exactly_once": (
            len(stored) == readers
            and len(served) == readers
            and eml_files == len(emails) == len(with_papers)
        ),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--workers", default="auto", help='[run] workers: a number or "auto"')
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder, and keep it.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        figures = measure(args.keep, args.readers, args.workers)
    else:
        with tempfile.TemporaryDirectory() as folder:
            figures = measure(Path(folder), args.readers, args.workers)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:<22} {value}")


if __name__ == "__main__":
    main()
