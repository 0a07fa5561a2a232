"""Readers in files: what ``digest subscribers import`` reads and ``export`` writes.

Two formats, told apart by the file's first character (``[`` is JSON):

- CSV with a header row naming fields (``email,keywords,...``; ``email`` is required). A
  list field's cell is ``;``-separated (``mamba;state space model``), or a JSON array when
  an item holds a ``;`` or is a weighted term; ``interests`` is a JSON array. An empty
  cell means "not given".
- JSON: a list of objects with the same fields, values as in the config.

Parsing keeps each row's line, so every problem is reported as ``FILE:LINE: key: ...``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.errors import SubscriberError
from digest.readers import FIELDS, Reader

if TYPE_CHECKING:
    from digest.store import Store
    from digest.store.readers import Check

# Fields whose values are lists (a ``;``-separated cell in CSV) or structures (JSON cell).
LIST_FIELDS = frozenset(
    ("keywords", "exclude", "require", "authors", "categories", "sources", "liked", "channels")
)
JSON_FIELDS = frozenset(("interests",))
FORMATS = ("csv", "json")
FILE_HINT = (
    "an import file is CSV with a header row of field names (email,keywords,...) or a "
    "JSON list of objects, one per reader"
)


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # where the row starts in its file, 1-based
    values: dict[str, Any]
    problems: tuple[str, ...] = ()  # cells that could not be read, as "key: ..."


def read_rows(path: Path) -> list[Row]:
    """The rows of an import file; SubscriberError naming the file (and line) if it cannot
    be read as CSV or as a JSON list of objects."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberError(
            f"{path}: cannot read the import file: {exc}", hint=FILE_HINT
        ) from None
    if text.lstrip().startswith("["):
        return json_rows(text, path)
    return csv_rows(text, path)


def csv_rows(text: str, path: Path) -> list[Row]:
    """Rows of a CSV file with a header; each cell converted by ``cell_value``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise SubscriberError(
            f"{path}: the file is empty; expected a header row", hint=FILE_HINT
        ) from None
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise SubscriberError(
            f"{path}:1: column {twice[0]!r} appears more than once", hint=FILE_HINT
        )
    unknown = [name for name in header if name not in FIELDS]
    if unknown or "email" not in header:
        what = f"unknown column {unknown[0]!r}" if unknown else "no email column"
        raise SubscriberError(
            f"{path}:1: {what}; expected a header row of: {', '.join(FIELDS)} (email required)",
            hint=FILE_HINT,
        )
    rows = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                count = f"expected {len(header)} cells as in the header, got {len(cells)}"
                rows.append(Row(line, {}, (f"(row): {count}",)))
                continue
            rows.append(_csv_row(line, header, cells))
    except csv.Error as exc:
        raise SubscriberError(
            f"{path}:{reader.line_num}: not valid CSV: {exc}", hint=FILE_HINT
        ) from None
    return rows


def _csv_row(line: int, header: list[str], cells: list[str]) -> Row:
    values, problems = {}, []
    for name, cell in zip(header, cells, strict=True):
        try:
            value = cell_value(name, cell)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if value is not None:
            values[name] = value
    return Row(line, values, tuple(problems))


def cell_value(name: str, cell: str) -> Any:
    """A CSV cell (or a ``--set key=value``) as the value its field takes; None if empty."""
    cell = cell.strip()
    if not cell:
        return None
    if name in JSON_FIELDS or (name in LIST_FIELDS and cell.startswith("[")):
        try:
            return json.loads(cell)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected a JSON array, got {cell!r} ({exc.msg})") from None
    if name in LIST_FIELDS:
        return [item.strip() for item in cell.split(";") if item.strip()]
    return cell


def json_rows(text: str, path: Path) -> list[Row]:
    """The objects of a JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder()
    at = text.index("[") + 1
    rows: list[Row] = []
    while True:
        at = _skip(text, at)
        if at < len(text) and text[at] == "]" and not rows:
            at += 1
            break
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise SubscriberError(
                f"{path}:{exc.lineno}: not valid JSON: {exc.msg}", hint=FILE_HINT
            ) from None
        line = text.count("\n", 0, at) + 1
        if not isinstance(value, dict):
            raise SubscriberError(
                f"{path}:{line}: expected an object per reader, got {value!r}", hint=FILE_HINT
            )
        rows.append(Row(line, value))
        at = _skip(text, end)
        if text[at : at + 1] == ",":
            at += 1
            continue
        if text[at : at + 1] == "]":
            at += 1
            break
        line = text.count("\n", 0, at) + 1
        raise SubscriberError(f"{path}:{line}: not valid JSON: expected ',' or ']'", hint=FILE_HINT)
    if _skip(text, at) != len(text):
        line = text.count("\n", 0, at) + 1
        raise SubscriberError(f"{path}:{line}: not valid JSON: text after the list", hint=FILE_HINT)
    return rows


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def write_readers(readers: Iterable[Reader], fmt: str) -> str:
    """The readers in the format import reads back (defaults left out)."""
    records = [reader.fields() for reader in readers]
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    columns = [name for name in FIELDS if any(name in record for record in records)]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns or ["email"])
    for record in records:
        writer.writerow([csv_cell(name, record.get(name)) for name in columns])
    return out.getvalue()


def csv_cell(name: str, value: Any) -> str:
    """A field's value as a CSV cell that ``cell_value`` reads back the same."""
    if value is None:
        return ""
    if name in JSON_FIELDS:
        return json.dumps(value, ensure_ascii=False)
    if name in LIST_FIELDS:
        plain = all(isinstance(v, str) and ";" not in v and v.strip() == v for v in value)
        if plain and not (value and value[0].startswith("[")):
            return ";".join(value)
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(slots=True)
class FileImport:
    """What importing a file did, and every bad row as ``FILE:LINE: key: ...``."""

    rows: int
    added: int
    updated: int
    problems: list[str]
    bad_rows: int
    written: bool


def import_file(
    store: Store, path: Path, now: datetime, *, check: Check | None, skip_bad: bool
) -> FileImport:
    """Read, validate and upsert the readers of a file: nothing is written if a row is bad,
    unless ``skip_bad`` (then the good rows are)."""
    rows = read_rows(path)
    unreadable = [row for row in rows if row.problems]
    readable = [row for row in rows if not row.problems]
    found = store.import_subscribers(
        [row.values for row in readable],
        now,
        check=check,
        skip_bad=skip_bad,
        write=skip_bad or not unreadable,
    )
    bad = [(row.line, problem) for row in unreadable for problem in row.problems]
    bad += [(readable[index].line, problem) for index, problem in found.bad]
    bad.sort(key=lambda item: item[0])
    return FileImport(
        rows=len(rows),
        added=found.added,
        updated=found.updated,
        problems=[f"{path}:{line}: {problem}" for line, problem in bad],
        bad_rows=len({line for line, _ in bad}),
        written=found.written,
    )
