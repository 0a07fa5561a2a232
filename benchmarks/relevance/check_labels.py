"""Check the relevance labels in this folder against the seed captures.

Re-enumerates the papers of the captures in ../shared/seeds beside the repository (or the
folder given as the first argument) with the project's own parser, and verifies that:

* there are 226 distinct papers, identified as CAPTURE:INDEX by the first capture (in
  file order) whose listing holds the paper's normalised title;
* interests.toml has 6 to 12 interests with 3 to 10 keywords each;
* qrels.tsv has the expected header, one line per (interest, paper), sorted by interest
  (in interests.toml order) then paper id, every title_sha1 matching the paper it names,
  grades in {0, 1, 2};

then prints the number of papers graded 2, 1 and 0 per interest. Exits non-zero on any
problem. Standard library and the digest package only.

Usage: python benchmarks/relevance/check_labels.py [SEEDS_DIR]
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
from datetime import date
from pathlib import Path

from digest.sources.parse.page_text import parse_page_text

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[2] / "shared" / "seeds"  # ../shared beside the repository
EXPECTED_PAPERS = 226
TODAY = date(2026, 11, 22)
HEADER = ["interest", "paper", "title_sha1", "grade", "note"]


def title_sha1(title_key: str) -> str:
    return hashlib.sha1(title_key.encode("utf-8")).hexdigest()[:12]


def enumerate_papers(seeds: Path) -> dict[str, str]:
    """Paper id -> title_sha1, ids assigned by first appearance in file order."""
    ids: dict[str, str] = {}
    seen: set[str] = set()
    files = sorted(seeds.glob("*.txt"))
    if not files:
        raise SystemExit(f"no captures (*.txt) in {seeds}")
    for path in files:
        listing = parse_page_text(path.read_text(encoding="utf-8"), path.name, today=TODAY)
        capture = path.name[:3]
        for index, paper in enumerate(listing.papers):
            if paper.title_key in seen:
                continue
            seen.add(paper.title_key)
            ids[f"{capture}:{index}"] = title_sha1(paper.title_key)
    return ids


def paper_sort_key(paper_id: str) -> tuple[str, int]:
    capture, index = paper_id.split(":")
    return capture, int(index)


def main(argv: list[str]) -> int:
    seeds = Path(argv[1]) if len(argv) > 1 else DEFAULT_SEEDS
    errors: list[str] = []

    papers = enumerate_papers(seeds)
    if len(papers) != EXPECTED_PAPERS:
        errors.append(f"expected {EXPECTED_PAPERS} distinct papers, found {len(papers)}")
    if len(set(papers.values())) != len(papers):
        errors.append("two papers share a title_sha1")

    config = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    interests = config.get("interests", [])
    names = [interest.get("name", "") for interest in interests]
    if not 6 <= len(names) <= 12:
        errors.append(f"expected 6 to 12 interests, found {len(names)}")
    if len(set(names)) != len(names):
        errors.append("interest names are not unique")
    for interest in interests:
        keywords = interest.get("keywords", [])
        if not 3 <= len(keywords) <= 10:
            errors.append(f"{interest.get('name')}: {len(keywords)} keywords, expected 3 to 10")
        if not str(interest.get("description", "")).strip():
            errors.append(f"{interest.get('name')}: missing description")

    lines = (HERE / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != HEADER:
        errors.append(f"qrels.tsv: header must be {HEADER!r}")
        lines = lines[:1]
    rows: list[tuple[str, str, int]] = []
    counts = {name: {2: 0, 1: 0, 0: 0} for name in names}
    graded: dict[str, set[str]] = {name: set() for name in names}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 5:
            errors.append(f"qrels.tsv:{number}: expected 5 tab-separated fields, got {len(fields)}")
            continue
        interest, paper, sha, grade, _note = fields
        if interest not in graded:
            errors.append(f"qrels.tsv:{number}: unknown interest {interest!r}")
            continue
        if paper not in papers:
            errors.append(f"qrels.tsv:{number}: unknown paper id {paper!r}")
            continue
        if sha != papers[paper]:
            errors.append(
                f"qrels.tsv:{number}: title_sha1 {sha} does not match {paper} ({papers[paper]})"
            )
        if grade not in {"0", "1", "2"}:
            errors.append(f"qrels.tsv:{number}: grade {grade!r} is not 0, 1 or 2")
            continue
        if paper in graded[interest]:
            errors.append(f"qrels.tsv:{number}: duplicate pair ({interest}, {paper})")
        graded[interest].add(paper)
        counts[interest][int(grade)] += 1
        rows.append((interest, paper, int(grade)))

    for name in names:
        missing = set(papers) - graded[name]
        if missing:
            example = sorted(missing, key=paper_sort_key)[:5]
            errors.append(f"{name}: {len(missing)} papers without a grade, e.g. {example}")

    order = {name: position for position, name in enumerate(names)}
    keys = [(order[interest], paper_sort_key(paper)) for interest, paper, _ in rows]
    if keys != sorted(keys):
        errors.append("qrels.tsv is not sorted by interest (interests.toml order) then paper id")

    print(f"papers: {len(papers)} distinct ids from {seeds}")
    print(f"{'interest':<24} {'2':>4} {'1':>4} {'0':>4}")
    for name in names:
        c = counts[name]
        print(f"{name:<24} {c[2]:>4} {c[1]:>4} {c[0]:>4}")

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)", file=sys.stderr)
        for error in errors[:50]:
            print(f"  - {error}", file=sys.stderr)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
