"""The config: the documented example loads, every field is documented, errors say where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from conftest import REPO
from digest.config import (
    ArxivApiSettings,
    ArxivRssSettings,
    Config,
    FeedSettings,
    FileSourceSettings,
    HfDailySettings,
    HttpSettings,
    InterestSettings,
    ScheduleSettings,
    SemanticSettings,
    ServeSettings,
    SubscriberSettings,
    WebSettings,
    WeightedTerm,
    load_config,
    parse_config,
)
from digest.errors import ConfigError

MINIMAL = """
[[sources]]
name = "inbox"
kind = "file"
path = "inbox/*.txt"

[[subscribers]]
name = "alice"
email = "alice@example.org"
"""


ALL_MODELS = [
    Config,
    Config.model_fields["store"].annotation,
    Config.model_fields["run"].annotation,
    Config.model_fields["output"].annotation,
    Config.model_fields["email"].annotation,
    HttpSettings,
    ScheduleSettings,
    ServeSettings,
    WebSettings,
    SemanticSettings,
    FileSourceSettings,
    HfDailySettings,
    ArxivRssSettings,
    ArxivApiSettings,
    FeedSettings,
    SubscriberSettings,
    InterestSettings,
    WeightedTerm,
]


TABLES = {
    "store",
    "run",
    "output",
    "email",
    "http",
    "schedule",
    "serve",
    "web",
    "semantic",
    "sources",
    "subscribers",
}


def fields_of(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def test_the_example_config_loads_and_documents_every_setting():
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    config = load_config(REPO / "config.example.toml")
    assert config.sources and config.subscribers
    lines = text.splitlines()
    for model in ALL_MODELS:
        for key in fields_of(model) - TABLES:
            assignment = re.compile(rf"^(# )*{re.escape(key)} = |[{{,] {re.escape(key)} = ")
            table = re.compile(rf"^\[\[?([\w]+\.)*{re.escape(key)}\]\]?$")
            where = [
                i for i, line in enumerate(lines) if assignment.search(line) or table.match(line)
            ]
            assert where, f"{model.__name__}.{key} is not in config.example.toml"
            assert any(lines[i - 1].startswith("#") or lines[i].startswith("#") for i in where), (
                f"{key} has no comment above it"
            )


def test_every_setting_has_a_description():
    for model in ALL_MODELS:
        for name, info in model.model_fields.items():
            if name not in {"store", "run", "output", "email", "http", "serve", "web"}:
                assert info.description, f"{model.__name__}.{name} has no description"


def test_the_example_shows_a_live_setup():
    config = load_config(REPO / "config.example.toml")
    kinds = [s.kind for s in config.sources]
    assert kinds == ["hf_daily", "arxiv_rss", "arxiv_api"]
    assert len(config.sources[1].categories) == 2


def test_the_quick_start_config_loads():
    config = load_config(REPO / "examples" / "config.toml")
    assert [s.name for s in config.subscribers] == ["alice", "bob"]


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "config.toml"
    path.write_text(MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/config.toml"))
    assert config.resolve(config.store.path) == tmp_path / "conf" / "digest.db"
    assert config.resolve("/abs/x") == Path("/abs/x")


def test_defaults():
    config = parse_config(MINIMAL, Path("/x/config.toml"))
    alice = config.subscribers[0]
    assert (alice.keywords, alice.max_papers, alice.channels) == ((), 20, ("email", "feed", "page"))
    assert config.sources[0].announce_types == ("new", "cross")
    assert config.timezone == "UTC"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("/cfg/config.toml"))
    return caught.value.message.splitlines()


def test_errors_name_the_file_line_key_and_expectation():
    text = MINIMAL + 'max_papers = "ten"\nchannels = ["email", "pigeon"]\ncolour = "blue"\n'
    found = problems('timezone = "Mars/Olympus"\n' + text)
    assert found == [
        "/cfg/config.toml:1: timezone: expected an IANA time zone such as Europe/Berlin, got 'Mars/Olympus'",
        "/cfg/config.toml:11: subscribers[0].max_papers: expected a whole number, got 'ten'",
        "/cfg/config.toml:12: subscribers[0].channels[1]: expected 'email', 'feed', 'page' or 'markdown', got 'pigeon'",
        "/cfg/config.toml:13: unknown key 'subscribers[0].colour'; check its spelling (config.example.toml has all)",
    ]


def test_missing_keys_and_unknown_kinds():
    found = problems('[[sources]]\nname = "x"\nkind = "ftp"\n[[subscribers]]\nname = "a"\n')
    assert (
        "/cfg/config.toml:1: sources[0].kind: unknown source kind 'ftp'; "
        "expected: file, hf_daily, arxiv_rss, arxiv_api, feed"
    ) in found
    assert "/cfg/config.toml:4: missing required key 'subscribers[0].email'" in found
    assert problems("")[0] == "/cfg/config.toml: missing required key 'sources'"


def test_bad_values_are_explained():
    found = problems(
        MINIMAL.replace("alice@example.org", "alice").replace('name = "alice"', 'name = "al ice"')
    )
    assert any("subscribers[0].name: expected 1-64 letters" in p for p in found)
    assert any("subscribers[0].email: expected one email address" in p for p in found)
    found = problems(MINIMAL + '[[subscribers]]\nname = "alice"\nemail = "b@example.org"\n')
    assert any("subscribers names must be unique; repeated: alice" in p for p in found)


def test_toml_syntax_errors_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        parse_config('a = 1\nb = "unterminated\nc = 2\n', Path("/cfg/config.toml"))
    with pytest.raises(ConfigError, match="config file not found") as caught:
        load_config(tmp_path / "nope.toml")
    assert "--config" in caught.value.hint


def test_umask_is_three_octal_digits_in_quotes():
    assert parse_config(MINIMAL, Path("/x/config.toml")).output.umask_bits == 0o077
    text = '[output]\numask = "022"\n' + MINIMAL
    assert parse_config(text, Path("/x/config.toml")).output.umask_bits == 0o022
    assert problems('[output]\numask = "999"\n' + MINIMAL) == [
        '/cfg/config.toml:2: output.umask: expected three octal digits in quotes, such as "077" '
        "or \"022\", got '999'"
    ]
    assert problems("[output]\numask = 22\n" + MINIMAL)[0].startswith(
        "/cfg/config.toml:2: output.umask: expected a string in quotes"
    )


@pytest.mark.parametrize(
    "name", ["DIGEST_SMTP_PASSWORD", "HF_TOKEN", "smtp_password_2024", "_X", "MySmtpPassword"]
)
def test_variable_names_are_accepted_for_env_keys(name):
    text = f'[email]\nhost = "smtp.example.org"\nusername = "me"\npassword_env = "{name}"\n'
    assert parse_config(text + MINIMAL, Path("/x/config.toml")).email.password_env == name


def test_redactor_replaces_every_configured_secret_and_leaves_short_values():
    from digest.report import Redactor

    redact = Redactor.of(["s3cret-value", "s3cret-value-longer", "abc", None])
    assert redact.text("a s3cret-value-longer and s3cret-value") == "a [redacted] and [redacted]"
    assert redact.json({"a": ["abc s3cret-value", 3]}) == {"a": ["abc [redacted]", 3]}


def test_keyword_syntax_errors_name_the_keyword_and_its_line():
    text = MINIMAL + "keywords = ['mamba', 'diffusion^x']\nexclude = ['\"survey']\n"
    found = problems(text)
    assert found[0].startswith(
        "/cfg/config.toml:10: subscribers[0].keywords[1]: 'diffusion^x': a weight is ^"
    )
    assert found[1].startswith("/cfg/config.toml:11: subscribers[0].exclude[0]: '\"survey': quotes")
    weighted = MINIMAL + 'keywords = [{ term = "kv cache^2", weight = 1.5 }]\n'
    assert "give the weight once" in problems(weighted)[0]


def test_hosts_are_host_names_or_addresses():
    for host in ("smtp.example.org", "localhost", "127.0.0.1", "::1", "mail_relay"):
        text = f'[email]\nhost = "{host}"\n' + MINIMAL
        assert parse_config(text, Path("/x/config.toml")).email.host == host
    assert problems('[email]\nhost = "smtp://smtp.example.org"\n' + MINIMAL)[0].startswith(
        "/cfg/config.toml:2: email.host: expected a host name without a scheme"
    )
