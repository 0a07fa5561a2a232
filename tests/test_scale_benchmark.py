"""benchmarks/scale.py on a small workload: its second day reads the kept models.

The benchmark's figures are in benchmarks/README.md; this only checks that it still runs
end to end and reports what it claims: on the day after the readers rated, with no new
ratings, every rated reader's model is read from the store and none is fitted again.
"""

from __future__ import annotations

import importlib
import json
import sys

from conftest import REPO


def test_the_second_day_ranks_rated_readers_with_their_kept_models(capsys, tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        scale = importlib.import_module("scale")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    arguments = ["--papers", "80", "--subscribers", "6", "--rated", "4", "--naive-sample", "3"]
    arguments += ["--workers", "1", "--second-day", "--json", "--keep", str(tmp_path)]
    assert scale.main(arguments) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exactly_once"] and report["delivered_papers"] > 0
    second = report["second_day"]
    assert second["ok"] and second["new_papers"] == 80
    assert second["models_kept"] == 4  # the first day fitted one per rated reader
    assert second["models_refitted"] == 0
    assert second["delivered_papers"] > 0
