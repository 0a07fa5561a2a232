"""Sources under faults: what a failed or partial read leaves behind is read again.

Real captured responses are served by a real local HTTP server (pytest-httpserver), with
faults injected by its handlers; runs go through ``run_once`` into a real SQLite store.
The assertions count papers stored and delivered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from werkzeug import Request, Response

from conftest import run_on, utc_at
from digest.config import load_config
from digest.pipeline import open_store, run_once

HF_0612 = "hf_daily_papers/daily_papers_2026-06-12_sotawhat.json"


def hf_source(base: str, **extra: object) -> str:
    lines = ['name = "hf"', 'kind = "hf_daily"', f'base_url = "{base}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n[[sources]]\n" + "\n".join(lines) + "\n"


def stored_ids(config_path: Path, ids: list[str]) -> set[str]:
    with open_store(load_config(config_path)) as store:
        return {ref for ref in ids if store.find_paper(ref) is not None}


class PagedDay:
    """One day of Hugging Face Daily Papers, served page by page with ETags and 304s.

    ``fault(page, request)`` may return a response to send instead of the page (a 500, a
    truncated body); ``not_modified`` answers 304 to a matching If-None-Match.
    """

    def __init__(self, items: list[dict], page_size: int) -> None:
        self.items = items
        self.page_size = page_size
        self.fault: Callable[[int, Request], Response | None] = lambda _page, _request: None
        self.log: list[tuple[int, int, bool]] = []  # page, status, conditional

    def body(self, page: int) -> bytes:
        start = page * self.page_size
        return json.dumps(self.items[start : start + self.page_size]).encode()

    def __call__(self, request: Request) -> Response:
        page = int(request.args.get("p", "0"))
        conditional = "If-None-Match" in request.headers
        response = self.fault(page, request) or self.page(page, request)
        self.log.append((page, response.status_code, conditional))
        return response

    def page(self, page: int, request: Request) -> Response:
        body = self.body(page)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type="application/json", headers={"ETag": etag})


@pytest.fixture
def day_0612(fixtures_dir: Path) -> list[dict]:
    items = json.loads((fixtures_dir / HF_0612).read_bytes())
    assert len(items) == 30
    return items


def _paper_ids(items: list[dict]) -> list[str]:
    return [item["paper"]["id"] for item in items]


# --- Hugging Face: a 304 on page 0 never hides the pages that were not read ---------------


@pytest.mark.parametrize("fault", ["HTTP 500", "truncated JSON"])
def test_hf_pages_after_a_failed_page_are_read_after_a_304_on_page_0(
    httpserver, make_config, make_http, day_0612, fault
):
    served = PagedDay(day_0612, page_size=10)  # 30 papers: pages 0-2 full, page 3 empty

    def broken_page_1(page: int, _request: Request) -> Response | None:
        if page != 1:
            return None
        if fault == "HTTP 500":
            return Response("internal error", status=500)
        return Response(served.body(1)[:200], content_type="application/json")

    served.fault = broken_page_1
    httpserver.expect_request("/api/daily_papers").respond_with_handler(served)
    config = make_config(
        sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0, page_size=10)
    )
    first = run_on(config, "2026-06-12", make_http(retries=1))
    assert first.sources["hf"].error and "2026-06-12" in first.sources["hf"].error
    assert first.sources["hf"].new == 10  # page 0 only
    assert len(stored_ids(config, _paper_ids(day_0612))) == 10

    served.fault = lambda _page, _request: None
    served.log.clear()
    second = run_on(config, "2026-06-12", make_http())
    assert served.log[0] == (0, 304, True)  # page 0 is unchanged, and says so
    assert [page for page, status, _ in served.log] == [0, 1, 2, 3]
    assert second.sources["hf"].error is None
    assert second.sources["hf"].new == 20
    assert stored_ids(config, _paper_ids(day_0612)) == set(_paper_ids(day_0612))
    assert first.subscribers["all"].delivered + second.subscribers["all"].delivered == 30


def test_an_unchanged_day_read_to_its_end_costs_one_304_per_page(
    httpserver, make_config, make_http, day_0612
):
    served = PagedDay(day_0612, page_size=10)
    httpserver.expect_request("/api/daily_papers").respond_with_handler(served)
    config = make_config(
        sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0, page_size=10)
    )
    first = run_on(config, "2026-06-12", make_http())
    assert (first.sources["hf"].new, first.sources["hf"].error) == (30, None)
    served.log.clear()
    second = run_on(config, "2026-06-12", make_http(), hour=18)
    assert served.log == [(0, 304, True), (1, 304, True), (2, 304, True), (3, 304, True)]
    assert (second.sources["hf"].papers, second.sources["hf"].error) == (0, None)
    assert second.subscribers["all"].delivered == 0


def test_papers_added_to_a_later_page_of_a_read_day_are_found(
    httpserver, make_config, make_http, day_0612
):
    served = PagedDay(day_0612[:25], page_size=10)  # pages 0, 1 full, page 2 holds 5
    httpserver.expect_request("/api/daily_papers").respond_with_handler(served)
    config = make_config(
        sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0, page_size=10)
    )
    assert run_on(config, "2026-06-12", make_http()).sources["hf"].new == 25
    served.items = day_0612  # five more papers, at the end of the day's list
    served.log.clear()
    later = run_on(config, "2026-06-12", make_http(), hour=18)
    assert [(page, status) for page, status, _ in served.log] == [
        (0, 304),
        (1, 304),
        (2, 200),
        (3, 200),
    ]
    assert later.sources["hf"].new == 5
    assert stored_ids(config, _paper_ids(day_0612)) == set(_paper_ids(day_0612))


# --- unbounded inputs: fields are cut before LaTeX conversion, files over a cap refused -----

TITLE_LIMIT, ABSTRACT_LIMIT, AUTHOR_NAME_LIMIT, AUTHORS_LIMIT = 1_000, 20_000, 200, 500

HF_0731 = "hf_daily_papers/daily_papers_2026-07-31_no_ai_summary_allnewsai.json"
HF_0803 = "hf_daily_papers/daily_papers_2026-08-03_newsassistant.json"


def test_a_5_mb_latex_abstract_is_cut_before_it_is_converted(make_config, clock):
    latex = r"We bound $\mathcal{O}(n \log n)$ with \textbf{B\"uttiker} terms $\alpha_i^{2}$. "
    abstract = latex * (5 * 1024 * 1024 // len(latex))
    assert len(abstract) > 5_000_000
    item = {
        "paper": {
            "id": "2606.99999",
            "title": "A title that never ends " * 2_000,
            "summary": abstract,
            "authors": [{"name": f"Author {n}"} for n in range(1_999)] + [{"name": "N" * 5_000}],
            "publishedAt": "2026-03-12T00:00:00.000Z",
        }
    }
    config = make_config()
    listing = config.parent / "inbox" / "huge.json"
    listing.write_text(json.dumps([item]), encoding="utf-8")
    report = run_once(load_config(config), today=date(2026, 3, 13), clock=clock)
    assert report.sources["inbox"].error is None
    assert report.sources["inbox"].new == 1
    assert report.subscribers["all"].delivered == 1
    warnings = report.sources["inbox"].warnings
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{listing}: item 0 (2606.99999): too long, cut: ")
    for field in ("title", "abstract", "authors (first 500 of 2,000 kept)"):
        assert field in warnings[0]

    with open_store(load_config(config)) as store:
        paper = store.find_paper("2606.99999").paper
    assert len(paper.abstract_raw) == ABSTRACT_LIMIT + 1 and paper.abstract_raw.endswith("…")
    assert len(paper.title_raw) == TITLE_LIMIT + 1 and paper.title_raw.endswith("…")
    assert r"\textbf" not in paper.abstract and "Büttiker" in paper.abstract  # converted
    assert len(paper.abstract) < ABSTRACT_LIMIT + 1
    assert (len(paper.authors), paper.author_count) == (AUTHORS_LIMIT, 2_000)
    assert all(len(name) <= AUTHOR_NAME_LIMIT for name in paper.authors)


def test_a_file_over_max_bytes_is_refused_and_the_rest_still_runs(make_config, clock, fixtures_dir):
    sources = """
[[sources]]
name = "captures"
kind = "file"
path = "inbox/*"
max_bytes = 100000

[[sources]]
name = "more"
kind = "file"
path = "more/*"
"""
    config = make_config(sources=sources)
    inbox, more = config.parent / "inbox", config.parent / "more"
    more.mkdir()
    big = inbox / "a_big.json"
    big.write_bytes((fixtures_dir / HF_0612).read_bytes())
    small = fixtures_dir / HF_0731
    (inbox / "b_small.json").write_bytes(small.read_bytes())
    (more / "other.json").write_bytes((fixtures_dir / HF_0803).read_bytes())
    size = big.stat().st_size
    assert size > 100_000

    report = run_once(load_config(config), today=date(2026, 8, 3), clock=clock)
    error = report.sources["captures"].error
    assert error == (
        f"{big}: 0.2 MB ({size:,} bytes), larger than the 0.1 MB (100,000 bytes) source "
        "'captures' reads; the file was skipped (split the file, or raise max_bytes of "
        "source 'captures' in the config)"
    )
    read = {item["paper"]["id"] for item in json.loads(small.read_bytes())}
    other = {item["paper"]["id"] for item in json.loads((fixtures_dir / HF_0803).read_bytes())}
    assert report.sources["captures"].papers == len(read)  # the file under the cap is read
    assert report.sources["more"].error is None
    assert report.sources["more"].papers == len(other)
    assert report.subscribers["all"].delivered == len(read | other)
    refused = {item["paper"]["id"] for item in json.loads(big.read_bytes())}
    assert stored_ids(config, sorted(refused - read - other)) == set()


# --- arXiv RSS: an empty feed without a date is stale; staleness follows the digest date ---

RSS_SATURDAY = "arxiv_rss/rss_cs.CL_2026-08-01_saturday_empty_allnewsai.xml"


def rss_source(base: str) -> str:
    return f'\n[[sources]]\nname = "rss"\nkind = "arxiv_rss"\nbase_url = "{base}"\ncategories = ["cs.CL"]\n'


def run_at(config_path: Path, day: str, now: datetime, http):
    return run_once(
        load_config(config_path), today=date.fromisoformat(day), clock=lambda: now, http=http
    )


def test_an_empty_feed_without_a_date_is_reported_stale(
    httpserver, fixtures_dir, make_config, make_http
):
    saturday = (fixtures_dir / RSS_SATURDAY).read_bytes()
    undated = b"".join(line for line in saturday.splitlines(True) if b"<pubDate>" not in line)
    assert b"<item>" not in undated and b"pubDate" not in undated
    httpserver.expect_request("/rss/cs.CL", headers={"If-None-Match": '"e1"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/rss/cs.CL").respond_with_data(
        undated, content_type="application/rss+xml", headers={"ETag": '"e1"'}
    )
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/")))
    for hour in (11, 15):  # the second read is a 304 of the same undated, empty feed
        report = run_at(config, "2026-08-03", utc_at("2026-08-03", hour), make_http())
        source = report.sources["rss"]
        assert (source.papers, source.error, source.stale) == (0, None, True)
        assert [w for w in source.warnings if "carries no date" in w] == [
            f"{httpserver.url_for('/rss/cs.CL')}: the feed is empty and carries no date (no "
            "<pubDate> in its channel), so an outage cannot be told from a quiet day; expected "
            "a feed of 2026-08-03; its new papers come on a later run"
        ]
    assert source.requests[0]["status"] == 304


@pytest.mark.parametrize(
    ("digest_day", "warning"),
    [
        ("2026-08-01", None),  # Saturday's feed on a run for Saturday: a quiet day
        ("2026-08-03", "the feed is still dated 2026-08-01, expected 2026-08-03: "),
    ],
)
def test_staleness_is_judged_against_the_digest_date_not_the_wall_clock(
    httpserver, fixtures_dir, make_config, make_http, digest_day, warning
):
    httpserver.expect_request("/rss/cs.CL").respond_with_data(
        (fixtures_dir / RSS_SATURDAY).read_bytes(), content_type="application/rss+xml"
    )
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/")))
    months_later = datetime.fromisoformat("2026-12-02T13:00:00+00:00")  # a run with --date
    report = run_at(config, digest_day, months_later, make_http())
    source = report.sources["rss"]
    assert (source.error, source.stale) == (None, warning is not None)
    stale_warnings = [w for w in source.warnings if "dated" in w]
    assert [w for w in stale_warnings if warning and warning in w] == stale_warnings
    assert len(stale_warnings) == (0 if warning is None else 1)


# --- arXiv API: a window cut short by max_results is not counted as read ------------------

API_0713 = "arxiv_api/query_cat_cs.AI_OR_cs.LG_2026-07-13_new_format_50_entries_aiweeklyradar.xml"
API_ONE = "arxiv_api/id_list_1601.00001_2020-09-04_legacy_format_doi_journal_ref_zoia.xml"


def test_an_api_window_cut_by_max_results_is_asked_for_again(
    httpserver, fixtures_dir, make_config, make_http
):
    answers = {"one": (fixtures_dir / API_ONE).read_bytes()}
    answers["many"] = (fixtures_dir / API_0713).read_bytes()  # 386,601 results, 50 sent
    serving: list[str] = ["one"]
    queries: list[str] = []

    def answer(request: Request) -> Response:
        queries.append(request.args["search_query"])
        return Response(answers[serving[0]], content_type="application/atom+xml")

    httpserver.expect_request("/api/query").respond_with_handler(answer)
    base = httpserver.url_for("").rstrip("/")
    config = make_config(
        sources="\n[[sources]]\n"
        + "\n".join(
            [
                'name = "api"',
                'kind = "arxiv_api"',
                f'base_url = "{base}"',
                "query = 'cat:cs.LG'",
                "page_size = 50",
                "max_results = 50",
            ]
        )
        + "\n"
    )
    assert run_on(config, "2026-07-10", make_http()).sources["api"].error is None
    serving[0] = "many"
    cut = run_on(config, "2026-07-13", make_http())
    assert cut.sources["api"].papers == 50
    assert any(
        "386601 results, only the newest 50 were read; the days from 2026-07-05 are asked "
        "for again" in w
        for w in cut.sources["api"].warnings
    )
    with open_store(load_config(config)) as store:
        assert store.get_cursor("api")["last_day"] == "2026-07-10"
    run_on(config, "2026-07-14", make_http())
    assert "submittedDate:[202607050000 TO 202607150000]" in queries[-1]
