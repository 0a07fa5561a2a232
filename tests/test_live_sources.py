"""Live sources against a real local HTTP server serving the real captured responses.

The clock is fake (waits are recorded, never spent), so retries, Retry-After and the
3-second arXiv spacing are checked exactly and fast.
"""

from __future__ import annotations

import itertools
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import run_on
from digest.config import load_config
from digest.pipeline import open_store

HF_0612 = "hf_daily_papers/daily_papers_2026-06-12_sotawhat.json"
HF_0713 = "hf_daily_papers/daily_papers_limit25_2026-07-13_mixed_ai_summary_aiweeklyradar.json"
HF_0731 = "hf_daily_papers/daily_papers_limit30_2026-07-31_raw_curl_personalnewsfeed.json"
HF_0803 = "hf_daily_papers/daily_papers_2026-08-03_newsassistant.json"
API_0713 = "arxiv_api/query_cat_cs.AI_OR_cs.LG_2026-07-13_new_format_50_entries_aiweeklyradar.xml"
RSS_MULTI = "arxiv_rss/rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_new_cross_replace_layareader.xml"
RSS_SATURDAY = "arxiv_rss/rss_cs.CL_2026-08-01_saturday_empty_allnewsai.xml"
API_ERROR = "arxiv_api/docs_example_error_malformed_id_2007.xml"


def fixture(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / name).read_bytes()


def hf_source(base: str, name: str = "hf", **extra: object) -> str:
    lines = [f'name = "{name}"', 'kind = "hf_daily"', f'base_url = "{base}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n[[sources]]\n" + "\n".join(lines) + "\n"


def rss_source(base: str, categories: list[str], name: str = "rss") -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "arxiv_rss"\nbase_url = "{base}"\ncategories = {json.dumps(categories)}\n'


def api_source(base: str, name: str = "api", **extra: object) -> str:
    lines = [
        f'name = "{name}"',
        'kind = "arxiv_api"',
        f'base_url = "{base}"',
        "query = 'cat:cs.LG'",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n[[sources]]\n" + "\n".join(lines) + "\n"


def serve_hf_days(server: HTTPServer, days: dict[str, bytes]) -> None:
    for day, body in days.items():
        server.expect_request(
            "/api/daily_papers", query_string={"date": day, "limit": "100", "p": "0"}
        ).respond_with_data(body, content_type="application/json")
    server.expect_request("/api/daily_papers").respond_with_data(
        "[]", content_type="application/json"
    )


# --- 1. real responses parse into the expected papers ------------------------------------


def test_hf_daily_reads_the_day_and_rechecks_the_days_before(
    httpserver, fixtures_dir, make_config, make_http
):
    serve_hf_days(httpserver, {"2026-06-12": fixture(fixtures_dir, HF_0612)})
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/")))
    report = run_on(config, "2026-06-12", make_http())
    source = report.sources["hf"]
    assert (source.papers, source.new, source.error) == (30, 30, None)
    assert [r["url"].split("date=")[1][:10] for r in source.requests] == [
        "2026-06-10",
        "2026-06-11",
        "2026-06-12",
    ]
    assert report.subscribers["all"].delivered == 30
    with open_store(load_config(config)) as store:
        paper = store.find_paper("2606.00467").paper
    assert paper.published == date(2026, 5, 30)
    assert paper.sources == ("hf",)


def test_rss_keeps_new_and_cross_and_leaves_replacements_out(
    httpserver, fixtures_dir, make_config, make_http
):
    httpserver.expect_request("/rss/cs.LG+cs.AI+cs.CL+stat.ML").respond_with_data(
        fixture(fixtures_dir, RSS_MULTI), content_type="application/rss+xml"
    )
    config = make_config(
        sources=rss_source(
            httpserver.url_for("").rstrip("/"), ["cs.LG", "cs.AI", "cs.CL", "stat.ML"]
        )
    )
    report = run_on(config, "2026-09-24", make_http(), hour=11)
    source = report.sources["rss"]
    assert (source.papers, source.new, source.error, source.stale) == (3, 3, None, False)
    ids = {p["id"] for p in report.subscribers["all"].papers}
    assert ids == {"2609.26811", "2609.26820", "2205.06398"}


def test_hf_and_arxiv_listings_of_one_paper_become_one_paper_with_both_fields(
    httpserver, fixtures_dir, make_config, make_http
):
    serve_hf_days(httpserver, {"2026-07-13": fixture(fixtures_dir, HF_0713)})
    httpserver.expect_request("/api/query").respond_with_data(
        fixture(fixtures_dir, API_0713), content_type="application/atom+xml"
    )
    base = httpserver.url_for("").rstrip("/")
    config = make_config(
        sources=hf_source(base, recheck_days=0) + api_source(base, page_size=50, max_results=50)
    )
    report = run_on(config, "2026-07-13", make_http())
    assert report.sources["hf"].new == 25
    assert report.sources["api"].papers == 50
    assert report.sources["api"].new == 48  # two papers were already known from Hugging Face
    assert report.subscribers["all"].delivered == 73
    with open_store(load_config(config)) as store:
        paper = store.find_paper("2607.09657").paper
    assert set(paper.sources) == {"hf", "api"}
    assert paper.upvotes is not None  # from Hugging Face
    assert paper.categories and paper.pdf_url  # from arXiv
    assert paper.url.startswith("https://huggingface.co/papers/")


def test_saturday_feed_is_empty_and_fine_and_an_old_feed_is_stale(
    httpserver, fixtures_dir, make_config, make_http
):
    httpserver.expect_request("/rss/cs.CL").respond_with_data(
        fixture(fixtures_dir, RSS_SATURDAY), content_type="application/rss+xml"
    )
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/"), ["cs.CL"]))
    saturday = run_on(config, "2026-08-01", make_http())
    assert saturday.sources["rss"].error is None and saturday.sources["rss"].papers == 0
    assert saturday.sources["rss"].stale is False and saturday.ok

    monday = run_on(config, "2026-08-03", make_http())  # the server still sends Saturday's feed
    source = monday.sources["rss"]
    assert source.stale is True
    assert any("still dated 2026-08-01, expected 2026-08-03" in w for w in source.warnings)


def test_generic_feed_source_reads_any_rss(httpserver, fixtures_dir, make_config, make_http):
    httpserver.expect_request("/feed.xml").respond_with_data(
        fixture(fixtures_dir, "other/takara_tldr_daily_papers_rss_2026-04-30_brevio.xml"),
        content_type="application/rss+xml",
    )
    sources = (
        f'\n[[sources]]\nname = "tldr"\nkind = "feed"\nurl = "{httpserver.url_for("/feed.xml")}"\n'
    )
    report = run_on(make_config(sources=sources), "2026-04-30", make_http())
    assert (report.sources["tldr"].papers, report.sources["tldr"].error) == (50, None)
    assert report.subscribers["all"].papers[0]["id"] == "2604.26238"


# --- 2. faults: each has its documented behaviour and the report says what happened ------


def test_429_with_retry_after_is_waited_out(
    httpserver, fixtures_dir, make_config, make_http, fake_time
):
    httpserver.expect_oneshot_request("/api/daily_papers").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    serve_hf_days(httpserver, {"2026-06-12": fixture(fixtures_dir, HF_0612)})
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    report = run_on(config, "2026-06-12", make_http())
    assert fake_time.sleeps == [7.0]
    source = report.sources["hf"]
    assert source.error is None and source.new == 30
    assert source.requests[0]["status"] == 200
    assert source.requests[0]["retries"] == ["HTTP 429 TOO MANY REQUESTS; waited 7.0s"]


def test_hugging_face_ratelimit_header_says_how_long_to_wait(
    httpserver, fixtures_dir, make_config, make_http, fake_time
):
    httpserver.expect_oneshot_request("/api/daily_papers").respond_with_data(
        "",
        status=429,
        headers={
            "RateLimit": '"api";r=0;t=55',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        },
    )
    serve_hf_days(httpserver, {"2026-06-12": fixture(fixtures_dir, HF_0612)})
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    assert run_on(config, "2026-06-12", make_http()).sources["hf"].new == 30
    assert fake_time.sleeps == [55.0]


def test_503_then_200_backs_off_and_succeeds(
    httpserver, fixtures_dir, make_config, make_http, fake_time
):
    httpserver.expect_oneshot_request("/api/daily_papers").respond_with_data("busy", status=503)
    serve_hf_days(httpserver, {"2026-06-12": fixture(fixtures_dir, HF_0612)})
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    report = run_on(config, "2026-06-12", make_http(backoff=1.5))
    assert fake_time.sleeps == [1.5]  # backoff * 2**0, jitter fixed at 1.0
    assert report.sources["hf"].requests[0]["retries"] == [
        "HTTP 503 SERVICE UNAVAILABLE; waited 1.5s"
    ]
    assert report.ok


def test_persistent_503_fails_the_source_only_and_keeps_its_cursor(
    httpserver, fixtures_dir, seeds, make_config, make_http, fake_time
):
    httpserver.expect_request("/api/daily_papers").respond_with_data("down", status=503)
    sources = (
        hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0)
        + '\n[[sources]]\nname = "inbox"\nkind = "file"\npath = "inbox/*"\n'
    )
    config = make_config(sources=sources)
    (config.parent / "inbox" / "capture.txt").write_bytes(seeds[2].read_bytes())
    report = run_on(config, "2026-06-12", make_http(retries=2))
    error = report.sources["hf"].error
    assert "/api/daily_papers?date=2026-06-12" in error
    assert "HTTP 503 SERVICE UNAVAILABLE (gave up after 3 attempts)" in error
    assert "its papers come on the next successful run" in error
    assert fake_time.sleeps == [1.0, 2.0]
    assert report.sources["inbox"].new == 38 and report.subscribers["all"].delivered == 38
    assert not report.ok
    with open_store(load_config(config)) as store:
        assert "last_day" not in store.get_cursor("hf")


def test_a_retry_after_longer_than_max_wait_gives_up_at_once(
    httpserver, make_config, make_http, fake_time
):
    httpserver.expect_request("/api/daily_papers").respond_with_data(
        "", status=429, headers={"Retry-After": "3600"}
    )
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    report = run_on(config, "2026-06-12", make_http(max_wait=300))
    assert (
        "the server asks to wait 3600s, longer than [http] max_wait (300s)"
        in report.sources["hf"].error
    )
    assert fake_time.sleeps == []


def test_a_server_that_does_not_answer_times_out(httpserver, make_config, make_http):
    answered = threading.Semaphore(0)

    def slow(_request: Request) -> Response:
        time.sleep(0.6)
        answered.release()
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/api/daily_papers").respond_with_handler(slow)
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    report = run_on(config, "2026-06-12", make_http(timeout=0.2, retries=1))
    assert "no answer within 0.2s (gave up after 2 attempts)" in report.sources["hf"].error
    for _ in range(2):  # let the server finish both slow answers before the next test
        assert answered.acquire(timeout=10)


class _TruncatingHandler(socketserver.BaseRequestHandler):
    """Promises 5000 bytes of JSON, sends 100, and hangs up."""

    def handle(self) -> None:
        self.request.recv(65536)
        body = b'[{"paper": {"id": "2606.00001", "title": "x"}}' + b" " * 54
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        self.request.sendall(head + body)


def test_a_connection_that_breaks_off_mid_body_is_retried_then_reported(
    make_config, make_http, fake_time
):
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _TruncatingHandler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        config = make_config(sources=hf_source(base, recheck_days=0))
        report = run_on(config, "2026-06-12", make_http(retries=1))
        server.shutdown()
    error = report.sources["hf"].error
    assert "the connection broke off (truncated response" in error
    assert report.sources["hf"].papers == 0
    assert fake_time.sleeps == [1.0]


def test_a_truncated_document_is_a_parse_error_and_the_next_good_run_delivers(
    httpserver, fixtures_dir, make_config, make_http
):
    body = fixture(fixtures_dir, HF_0612)
    httpserver.expect_oneshot_request("/api/daily_papers").respond_with_data(
        body[: len(body) // 2], content_type="application/json"
    )
    serve_hf_days(httpserver, {"2026-06-12": body})
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    first = run_on(config, "2026-06-12", make_http())
    assert "not valid JSON" in first.sources["hf"].error
    assert first.subscribers["all"].delivered == 0
    second = run_on(config, "2026-06-12", make_http())
    assert second.sources["hf"].new == 30 and second.subscribers["all"].delivered == 30


def test_an_html_error_page_served_as_xml_is_an_error(httpserver, make_config, make_http):
    page = b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body><h1>Maintenance</h1></body></html>"
    httpserver.expect_request("/rss/cs.LG").respond_with_data(page, content_type="application/xml")
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/"), ["cs.LG"]))
    report = run_on(config, "2026-09-24", make_http())
    assert "/rss/cs.LG: an HTML page, not XML" in report.sources["rss"].error


def test_conditional_get_turns_an_unchanged_feed_into_a_304(
    httpserver, fixtures_dir, make_config, make_http
):
    body = fixture(fixtures_dir, RSS_MULTI)
    httpserver.expect_request("/rss/cs.LG", headers={"If-None-Match": '"v1"'}).respond_with_data(
        "", status=304
    )
    httpserver.expect_request("/rss/cs.LG").respond_with_data(
        body, content_type="application/rss+xml", headers={"ETag": '"v1"'}
    )
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/"), ["cs.LG"]))
    first = run_on(config, "2026-09-24", make_http(), hour=11)
    assert first.sources["rss"].new == 3
    second = run_on(config, "2026-09-24", make_http(), hour=15)
    source = second.sources["rss"]
    assert source.requests == [{"url": source.requests[0]["url"], "status": 304, "retries": []}]
    assert (source.papers, source.error, source.stale) == (0, None, False)
    assert second.ok


def test_arxiv_error_entry_with_http_200_is_an_error(
    httpserver, fixtures_dir, make_config, make_http
):
    httpserver.expect_request("/api/query").respond_with_data(
        fixture(fixtures_dir, API_ERROR), content_type="application/atom+xml"
    )
    config = make_config(sources=api_source(httpserver.url_for("").rstrip("/")))
    report = run_on(config, "2026-07-13", make_http())
    assert (
        "the arXiv API answered with an error: incorrect id format for 1234.12345"
        in report.sources["api"].error
    )
    with open_store(load_config(config)) as store:
        assert "last_day" not in store.get_cursor("api")


def test_http_error_statuses_say_what_to_do(httpserver, make_config, make_http, fake_time):
    httpserver.expect_request("/rss/cs.XX").respond_with_data("no such feed", status=404)
    config = make_config(sources=rss_source(httpserver.url_for("").rstrip("/"), ["cs.XX"]))
    report = run_on(config, "2026-09-24", make_http())
    assert (
        "/rss/cs.XX: HTTP 404 NOT FOUND (nothing at this address; check base_url"
        in report.sources["rss"].error
    )
    assert fake_time.sleeps == []  # a 404 is not retried


def test_oversized_responses_are_refused(httpserver, make_config, make_http):
    httpserver.expect_request("/api/daily_papers").respond_with_data(
        b"[" + b" " * 2_000_000 + b"]", content_type="application/json"
    )
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    report = run_on(config, "2026-06-12", make_http(max_response_mb=1))
    assert "the response is larger than 1 MB" in report.sources["hf"].error


# --- 3. downtime: two days unreachable, then every day's papers, once ---------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_days_of_downtime_are_caught_up_on_the_third(fixtures_dir, make_config, make_http):
    server = HTTPServer(port=_free_port())
    server.start()
    day_papers = {
        "2026-08-01": fixture(fixtures_dir, HF_0731),
        "2026-08-02": fixture(fixtures_dir, HF_0803),
        "2026-08-03": fixture(fixtures_dir, HF_0612),
    }
    try:
        config = make_config(sources=hf_source(server.url_for("").rstrip("/"), recheck_days=0))
        serve_hf_days(server, {"2026-08-01": day_papers["2026-08-01"]})
        first = run_on(config, "2026-08-01", make_http())
        assert first.subscribers["all"].delivered == 30
        server.stop()

        for day in ("2026-08-02", "2026-08-03"):
            down = run_on(config, day, make_http(retries=1))
            assert "cannot connect" in down.sources["hf"].error
            assert down.subscribers["all"].delivered == 0

        server.clear()
        server.start()
        serve_hf_days(server, day_papers)
        back = run_on(config, "2026-08-04", make_http())
        dates = [r["url"].split("date=")[1][:10] for r in back.sources["hf"].requests]
        assert dates == ["2026-08-02", "2026-08-03", "2026-08-04"]
        assert back.ok
        assert back.subscribers["all"].delivered == 3 + 30

        after = run_on(config, "2026-08-05", make_http())
        assert after.subscribers["all"].delivered == 0
        with open_store(load_config(config)) as store:
            summary = {s.name: s for s in store.summary().subscribers}
        assert summary["all"].delivered_papers == 63  # every paper of the three days, once
    finally:
        if server.is_running():
            server.stop()


def test_arxiv_api_window_reaches_back_to_the_last_success(make_config):
    from digest.sources.arxiv_api import ArxivApiSource

    source = ArxivApiSource(
        load_config(
            make_config(sources=api_source("http://x", lookback_days=5, max_catch_up_days=14))
        ).sources[0]
    )
    assert source.window(date(2026, 8, 10), date(2026, 8, 9)) == (
        date(2026, 8, 4),
        date(2026, 8, 10),
    )
    assert source.window(date(2026, 8, 10), date(2026, 8, 6)) == (
        date(2026, 8, 1),
        date(2026, 8, 10),
    )
    assert source.window(date(2026, 8, 30), date(2026, 8, 1)) == (
        date(2026, 8, 16),
        date(2026, 8, 30),
    )
    assert "submittedDate:[202608040000 TO 202608110000]" in source.search_query(
        date(2026, 8, 4), date(2026, 8, 10)
    )


# --- 4. arXiv spacing: at least 3 s between requests, across sources and processes --------


def test_consecutive_arxiv_requests_are_three_seconds_apart(
    httpserver, fixtures_dir, make_config, make_http, fake_time
):
    seen: list[float] = []

    def record(body: bytes, content_type: str):
        def handler(_request: Request) -> Response:
            seen.append(fake_time.now)
            return Response(body, content_type=content_type)

        return handler

    httpserver.expect_request("/rss/cs.LG").respond_with_handler(
        record(fixture(fixtures_dir, RSS_MULTI), "application/rss+xml")
    )
    httpserver.expect_request("/api/query").respond_with_handler(
        record(fixture(fixtures_dir, API_0713), "application/atom+xml")
    )
    base = httpserver.url_for("").rstrip("/")
    config = make_config(
        sources=rss_source(base, ["cs.LG"]) + api_source(base, page_size=50, max_results=100)
    )
    report = run_on(config, "2026-09-24", make_http(), hour=11)
    assert report.sources["api"].error is None
    assert len(seen) == 3  # the feed, then two pages of the search
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert all(gap >= 3.0 for gap in gaps), gaps


def test_spacing_holds_between_two_clients_sharing_the_store(fake_time, tmp_path):
    from digest.http import Throttle

    path = tmp_path / "arxiv.throttle"
    first = Throttle(3.0, path, fake_time.clock, fake_time.sleep)
    second = Throttle(3.0, path, fake_time.clock, fake_time.sleep)  # another process, same file
    starts = []
    for throttle in (first, second, first):
        with throttle.slot():
            starts.append(fake_time.now)
        fake_time.now += 0.25  # the response took a moment
    assert [round(b - a, 2) for a, b in itertools.pairwise(starts)] == [3.0, 3.0]


@pytest.mark.slow
def test_spacing_holds_across_real_processes(tmp_path):
    path = tmp_path / "arxiv.throttle"
    code = (
        "import sys, time, pathlib\n"
        "from digest.http import Throttle\n"
        "t = Throttle(3.0, pathlib.Path(sys.argv[1]), time.time, time.sleep)\n"
        "with t.slot():\n"
        "    print(time.time(), flush=True)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    from digest.http import Throttle

    with Throttle(3.0, path, time.time, time.sleep).slot():
        mine = time.time()
    assert mine - float(child.stdout) >= 3.0


def test_user_agent_names_the_tool_and_the_contact(httpserver, make_config, make_http):
    httpserver.expect_request(
        "/api/daily_papers",
        headers={
            "User-Agent": "paper-digest/0.1.0 (self-hosted research paper digest; me@example.org)"
        },
    ).respond_with_data("[]")
    config = make_config(sources=hf_source(httpserver.url_for("").rstrip("/"), recheck_days=0))
    from digest.config import HttpSettings
    from digest.http import Http

    http = Http(HttpSettings(contact="me@example.org"))
    try:
        report = run_on(config, "2026-06-12", http)
    finally:
        http.close()
    assert report.sources["hf"].error is None, report.sources["hf"].error


def test_hf_token_is_sent_from_the_environment_and_never_reported(
    httpserver, make_config, make_http, monkeypatch
):
    monkeypatch.setenv("MY_HF_TOKEN", "hf_secret_value")
    httpserver.expect_request(
        "/api/daily_papers", headers={"Authorization": "Bearer hf_secret_value"}
    ).respond_with_data("[]")
    config = make_config(
        sources=hf_source(
            httpserver.url_for("").rstrip("/"), recheck_days=0, token_env="MY_HF_TOKEN"
        )
    )
    report = run_on(config, "2026-06-12", make_http())
    assert report.sources["hf"].error is None
    assert "hf_secret_value" not in json.dumps(report.to_json())
