"""``katopotato jobs run``: any plugin's job here and now on embedded defaults (no service), with its
parameters as options, a progress bar and ``--output``; and ``vetting.run`` from the command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from katopotato.commands._jobs_run import build_params, params_parser, pick_output
from katopotato.errors import ConfigError
from plugins.vetting.jobs import RunParams
from plugins.vetting.records import FLAG_COLUMNS
from tests.scheduler.plugins_for_tests import SPEC as TEST_PLUGIN

from .conftest import REPO, write_dataset

pytestmark = pytest.mark.timeout(180)


def katopotato(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env["COUCHPOTATO_DATA_DIR"] = str(cwd / "data")
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "katopotato.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=150
    )


def test_vetting_run_from_the_command_line_writes_the_flagged_csv(tmp_path: Path) -> None:
    _contributions, _lda, _block, expected = write_dataset(tmp_path / "in", donors=40)
    done = katopotato(
        tmp_path,
        "jobs",
        "run",
        "vetting.run",
        "--contributions",
        "in/itcont.txt",
        "--watchlist",
        "in/lda.csv",
        "--watchlist",
        '{"source": "in/blocklist.json", "name": "blocklist"}',
        "--chunk-rows",
        "100",
        "--output",
        "flagged.csv",
        "--setting",
        "vetting.cpu_processes=1",
    )
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr and "wrote flagged.csv" in done.stderr  # the progress bar, then the file
    rows = list(csv.DictReader((tmp_path / "flagged.csv").read_text().splitlines()))
    assert list(rows[0]) == list(FLAG_COLUMNS)
    assert set(expected.items()) <= {(r["contribution_id"], r["rule"]) for r in rows}
    assert "contributions        131" in done.stdout and "malformed            3" in done.stdout


def test_a_failed_run_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    done = katopotato(tmp_path, "jobs", "run", "vetting.run", "--contributions", "nope.txt", "--no-progress")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("katopotato: error: job ") and "vetting.run) failed: cannot read nope.txt" in line
    bad = katopotato(tmp_path, "jobs", "run", "vetting.run", "--chunk-rows", "7")
    assert bad.returncode == 1 and "bad parameters for vetting.run: chunk_rows" in bad.stderr
    unknown = katopotato(tmp_path, "jobs", "run", "vetting.run", "--colour", "red")
    assert unknown.returncode == 2 and "unrecognized arguments: --colour red" in unknown.stderr


def test_help_lists_the_jobs_parameters(tmp_path: Path) -> None:
    done = katopotato(tmp_path, "jobs", "run", "vetting.run", "--help")
    assert done.returncode == 0
    for option in ("--contributions VALUE", "--watchlist VALUE", "--chunk-rows VALUE", "--output PATH", "--notify"):
        assert option in done.stdout


def test_any_plugins_job_runs_the_same_way(tmp_path: Path) -> None:
    args = ("--plugin", TEST_PLUGIN, "--value", '{"a": [1, 2]}', "--steps", "3", "--json")
    done = katopotato(tmp_path, "jobs", "run", "testing.echo", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"a": [1, 2]}


def test_options_from_a_parameter_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "list.csv").write_text("name\n")
    parser, shapes = params_parser("vetting.run", RunParams)
    monkeypatch.chdir(tmp_path)
    ns = parser.parse_args(
        [
            "--contributions",
            "s3://b/k",
            "--watchlist",
            "list.csv",
            "--watchlist",
            "https://x/y.csv",
            "--columns",
            '{"name": "Donor"}',
            "--no-notify",
            "--params",
            '{"chunk_rows": 500}',
        ]
    )
    params = build_params(ns, shapes)
    assert params == {
        "chunk_rows": 500,
        "contributions": "s3://b/k",
        "watchlists": [str(tmp_path / "list.csv"), "https://x/y.csv"],
        "columns": {"name": "Donor"},
        "notify": False,
    }
    RunParams.model_validate(params)


def test_which_output_a_path_asks_for() -> None:
    result = {"outputs": {"csv": "r/flagged.csv", "json": "r/flagged.json", "malformed": "r/malformed.csv"}}
    assert pick_output(result, "out/flagged.csv") == "r/flagged.csv"
    assert pick_output(result, "x.json") == "r/flagged.json"
    assert pick_output(result, "malformed.csv") == "r/flagged.csv"  # the extension's name wins
    assert pick_output({"outputs": {"report": "r/a.txt"}}, "a.pdf") == "r/a.txt"
    with pytest.raises(ConfigError, match="names no outputs"):
        pick_output(3, "x.csv")
    with pytest.raises(ConfigError, match="which output"):
        pick_output({"outputs": {"a": "x.txt", "b": "y.txt"}}, "z.pdf")
