"""Fixtures of the vetting tests: small contribution files and watchlists, a real Redis with a key
prefix per test, ``katopotato worker`` processes and an SMTP server (aiosmtpd) that keeps what it
receives."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from plugins.vetting.contributions import detect_format, read_rows
from plugins.vetting.engine import compile_watchlists, index_from_json
from plugins.vetting.matching import WatchlistIndex
from plugins.vetting.records import Contribution, MalformedRow
from plugins.vetting.watchlists import WatchlistSpec
from tests.servers import server_missing

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REPO = Path(__file__).resolve().parents[2]


def fec_line(
    sub_id: str,
    name: str,
    amount: float = 100.0,
    date: str = "01152024",
    *,
    city: str = "WASHINGTON",
    state: str = "DC",
    zip_code: str = "20001",
    employer: str = "ACME",
    occupation: str = "ENGINEER",
    entity: str = "IND",
    memo: str = "",
    tx: str = "15",
    committee: str = "C00000001",
    pgi: str = "P2024",
) -> str:
    """One itcont.txt line (21 pipe-separated fields)."""
    fields = [
        committee,
        "N",
        "Q1",
        pgi,
        "202401019000",
        tx,
        entity,
        name,
        city,
        state,
        zip_code,
        employer,
        occupation,
        date,
        f"{amount:.2f}",
        "",
        f"T{sub_id}",
        "1",
        memo,
        "",
        sub_id,
    ]
    return "|".join(fields)


def rows_of(text: str) -> tuple[list[Contribution], list[MalformedRow]]:
    data = text.encode()
    fmt = detect_format(data)
    body = data[fmt.data_offset :].decode()
    good: list[Contribution] = []
    bad: list[MalformedRow] = []
    for item in read_rows(body, fmt, start_line=fmt.data_line, source="test"):
        (good if isinstance(item, Contribution) else bad).append(item)  # type: ignore[arg-type]
    return good, bad


def index_of(*lists: tuple[str, str] | tuple[str, str, str]) -> WatchlistIndex:
    """A watchlist index from (name, CSV text[, default type]) pairs."""
    items = []
    for item in lists:
        name, text = item[0], item[1]
        kind = item[2] if len(item) > 2 else "person"
        items.append((text.encode(), WatchlistSpec(f"{name}.csv", name=name, kind=kind)))
    compiled, bad, _ = compile_watchlists(items)
    assert not bad, bad
    return index_from_json(compiled)


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL with a key prefix unique to this test; every key under it is deleted afterwards."""
    if not _redis_up():
        server_missing(f"needs a Redis server at {REDIS_HOST}:{REDIS_PORT} (.ci/run starts one)")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix=vettest-{os.getpid()}-{uuid.uuid4().hex[:10]}:"
    yield url
    import redis

    prefix = url.split("prefix=")[1]
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


class WorkerProcess:
    """A ``katopotato worker`` subprocess, its output in a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.proc, self.log, self.name = proc, log, name

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "ready" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} not ready in {timeout_s} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``katopotato worker`` processes sharing a file blob store; all are killed afterwards."""
    procs: list[WorkerProcess] = []

    def spawn(broker_url: str, *args: str, name: str) -> WorkerProcess:
        log = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "COUCHPOTATO_DATA_DIR": str(tmp_path / "data"),
            "COUCHPOTATO_BLOBS": f"file://{tmp_path / 'blobs'}",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, "-m", "katopotato.cli", "worker", "--broker", broker_url, "--name", name, *args]
        with open(log, "wb") as f:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        wp = WorkerProcess(proc, log, name)
        procs.append(wp)
        wp.wait_ready()
        return wp

    yield spawn
    for wp in procs:
        if wp.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(wp.proc.pid, signal.SIGKILL)
            wp.proc.wait()


class Inbox:
    """What the SMTP server received: (envelope sender, recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(data)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server (aiosmtpd) on a free loopback port; yields (port, inbox)."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


LDA_CSV = """name,employer,city,state,id,reason,source_url
"Robert J. Smith",Acme Strategies LLC,Washington,DC,L1,registered lobbyist,https://lda.senate.gov/L1
Joan Baker,Capitol Partners,Arlington,VA,L2,registered lobbyist,
Xiomara Quisenberry,Quill Advocacy,Washington,DC,L3,registered lobbyist,
"""
BLOCK_JSON = """[
  {"name": "Exxon Mobil Corporation", "type": "organization", "reason": "refused industry"},
  {"name": "oil and gas", "type": "keyword"},
  {"name": "Viktor Petrov", "type": "person", "state": "NY", "reason": "foreign agent"},
  {"city": "no name here"}
]"""


def write_dataset(where: Path, *, donors: int = 150) -> tuple[Path, Path, Path, dict[str, str]]:
    """An itcont.txt with background donors, planted matches, FEC-rule cases and malformed lines, and
    two watchlists. Returns (contributions, lda.csv, blocklist.json, {contribution id: expected rule})."""
    where.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    expected: dict[str, str] = {}
    firsts = ["ALAN", "BETH", "CARL", "DORA", "EVAN", "FAYE", "GLEN", "HOPE", "IVAN", "JUNE"]
    lasts = [
        "ABBOTT",
        "BURKE",
        "CHAVEZ",
        "DUNN",
        "ELLIS",
        "FLYNN",
        "GRANT",
        "HAYES",
        "IBARRA",
        "JONAS",
        "KERR",
        "LOWE",
        "MEYER",
        "NASH",
        "OWEN",
    ]
    n = 0
    for i in range(donors):
        name = f"{lasts[i % len(lasts)]}, {firsts[(i // len(lasts)) % len(firsts)]}"
        for k in range(3):
            n += 1
            lines.append(
                fec_line(
                    str(n),
                    name,
                    50.0,
                    f"0{k + 1}102024",
                    zip_code=f"{30000 + i}",
                    state="GA",
                    city="ATLANTA",
                    employer="ATLANTA SCHOOLS",
                    occupation="TEACHER",
                )
            )

    def add(rule: str, line: str) -> None:
        lines.append(line)
        expected[line.rsplit("|", 1)[1]] = rule

    add("watchlist_name", fec_line("9001", "SMITH, BOB MR.", employer="ACME STRATEGIES"))
    add("watchlist_name", fec_line("9002", "QUISENBERY, XIOMARA", employer="RETIRED"))
    add("watchlist_name", fec_line("9003", "Viktor Petrov", city="NEW YORK", state="NY", zip_code="10001"))
    add("watchlist_organization", fec_line("9004", "DOE, JANE", employer="EXXONMOBIL CORP", state="TX"))
    add("refused_industry", fec_line("9005", "ROE, RICH", employer="BIG OIL & GAS LLC", state="TX"))
    add("organization_contribution", fec_line("9006", "ACME WIDGETS INC", 1000, entity="ORG"))
    add("foreign_address", fec_line("9007", "BLAKE, ANN", city="LONDON", state="ZZ", zip_code=""))
    lines.append(fec_line("9008", "POOR, RICHARD", 3000, "01052024", state="OH"))
    add("over_limit", fec_line("9009", "POOR, RICHARD", 1000, "02052024", state="OH"))
    add("missing_fields", fec_line("9010", "VOID, VERA", 500, state="OH", employer="", occupation=""))
    lines.append(fec_line("9011", "BAKER, JOHN", state="VA", city="ARLINGTON"))  # a look-alike: not flagged
    lines.insert(40, "C00000001|N|broken line")
    lines.insert(200, fec_line("9099", "BAD, AMOUNT").replace("|100.00|", "|1O0|"))
    contributions = where / "itcont.txt"
    contributions.write_text("\n".join(lines) + "\n")
    lda = where / "lda.csv"
    lda.write_text(LDA_CSV)
    block = where / "blocklist.json"
    block.write_text(BLOCK_JSON)
    return contributions, lda, block, expected
