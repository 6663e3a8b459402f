"""A worker killed outright leaves Chromium, FFmpeg, Xvfb, a sink and a directory behind; the next
session cleans them up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from couchpotato.browser.process import sweep_orphans
from couchpotato.browser.pulse import PulseSink, modules_of
from tests.browser.conftest import Site, requires_browser

pytestmark = [pytest.mark.e2e, requires_browser]

WORKER = """
import asyncio, json, sys
from couchpotato.browser import BrowserSession
from couchpotato.egress import EgressProxy
from couchpotato.urlguard import UrlGuard

async def main():
    async with EgressProxy(UrlGuard.from_allowlist("127.0.0.1/32")) as proxy:
        async with BrowserSession(sys.argv[1], proxy_url=proxy.url) as session:
            await asyncio.sleep(2)
            r = await session.resources()
            print(json.dumps({"pids": r.pids, "xvfb": r.xvfb_pid, "server": r.pulse_server, "sink": r.sink,
                              "module": r.module_index, "workdir": str(r.workdir)}), flush=True)
            await asyncio.sleep(600)

asyncio.run(main())
"""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _create_sink(server: str) -> None:
    async with PulseSink(server):  # a new session's sink: it unloads sinks whose owner is dead
        pass


def test_leftovers_of_a_killed_worker_are_cleaned_by_the_next_session(site: Site) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, f"{site.url}/autoplay_a.html"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        ready, _, _ = select.select([worker.stdout], [], [], 60)
        assert ready, "the worker did not start its session"
        info = json.loads(worker.stdout.readline())
        worker.kill()  # SIGKILL to the worker alone: no chance to clean up
        worker.wait()
        left = [*info["pids"], info["xvfb"]]
        # Chromium goes by itself (its DevTools pipe to the worker closed) and FFmpeg at its next write
        # to the dead worker; Xvfb, the sink and the directory stay until someone cleans them up.
        assert len(info["pids"]) >= 3 and _running(info["xvfb"]), "nothing was left behind to clean"
        assert info["module"] in [index for index, _, _ in modules_of(info["server"])]

        killed, removed = sweep_orphans(Path(tempfile.gettempdir()), min_age_s=0)
        asyncio.run(_create_sink(info["server"]))

        assert not [pid for pid in left if _running(pid)], f"still running after the sweep: {left}"
        assert info["module"] not in [index for index, _, _ in modules_of(info["server"])]
        assert Path(info["workdir"]) in removed and not Path(info["workdir"]).exists()
        assert info["xvfb"] in killed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
        sweep_orphans(Path(tempfile.gettempdir()), min_age_s=0)
