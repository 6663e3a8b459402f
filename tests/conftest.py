"""Shared fixtures: generated speech, served media, the ASR engine (loaded once per run)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from couchpotato.testing import Programme, build_programme, serve_directory, synthesize

NEEDS = ("ffmpeg", "espeak-ng", "flite")


def _missing() -> list[str]:
    return [t for t in NEEDS if shutil.which(t) is None]


# Tests that drive Chromium are marked ``browser``: ``make test`` runs them on their own, one at a
# time, after the other tests (which run on two pytest-xdist workers). Each starts browsers, Xvfb and
# PulseAudio sinks, the heaviest and most timing-sensitive work here: sharing the 2 cores with
# another test's ASR made their audio glitch.
BROWSER_TESTS = (
    "tests/browser/",
    "tests/hotpotato/test_e2e_browser.py",
    "tests/service/test_console.py",
    "tests/vetting/test_console_review.py",
    "tests/sms/test_console_browser.py",
)


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.as_posix()
        if any(part in path for part in BROWSER_TESTS):
            item.add_marker(pytest.mark.browser)


CHROMIUM_WARMUP_TIMEOUT_S = 90.0


@pytest.fixture(scope="session", autouse=True)
def _chromium_started_once(request: pytest.FixtureRequest) -> None:
    """Before the first browser test: one Chromium started on Xvfb and PulseAudio, until its tab runs.

    In clean-clone CI runs the first Chromium after the other tests sometimes took more than 12 s to
    draw or play anything (its video black, no line on stderr) while later ones took 1-2 s; the
    first test's 11 s capture then heard nothing. What the first start waits on is not known; this
    takes that start out of any test's capture window, and says how long it took.
    """
    if not any(item.get_closest_marker("browser") for item in request.session.items):
        return
    import asyncio
    import time

    from couchpotato.browser import BrowserSession

    async def warm() -> float:
        started = time.monotonic()
        async with BrowserSession("about:blank", proxy_url="http://127.0.0.1:9") as session:
            assert session.chromium is not None
            pid = session.chromium.pid
            for _poll in range(int(CHROMIUM_WARMUP_TIMEOUT_S / 0.1)):
                if _has_renderer(pid):
                    break
                await asyncio.sleep(0.1)
        return time.monotonic() - started

    try:
        line = f"Chromium's first start (Xvfb, PulseAudio, a tab running): {asyncio.run(warm()):.1f} s"
    except Exception as e:  # the browser tests report what is wrong, with more context
        line = f"Chromium warm-up failed: {e}"
    plugins = request.config.pluginmanager
    say, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if say is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            say.write_line(line)


def _has_renderer(pid: int | None) -> bool:
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True) if pid else []
        return any("--type=renderer" in c.cmdline() for c in children)
    except psutil.Error:
        return False


# A failing test's report shows what the capture did, not only warnings: Chromium's, Xvfb's and the
# recorder's own lines, and HotPotato's decisions (the rare failures are the timing-dependent ones).
DIAGNOSTIC_LOGGERS = {"couchpotato.browser": logging.DEBUG, "katopotato.capture": logging.INFO}


@pytest.fixture(autouse=True)
def _diagnostic_logs() -> Iterator[None]:
    loggers = {name: logging.getLogger(name) for name in DIAGNOSTIC_LOGGERS}
    before = {name: lg.level for name, lg in loggers.items()}
    for name, lg in loggers.items():
        lg.setLevel(DIAGNOSTIC_LOGGERS[name])
    yield
    for name, lg in loggers.items():
        lg.setLevel(before[name])


requires_media_tools = pytest.mark.skipif(
    bool(_missing()), reason=f"needs {', '.join(_missing())} on PATH (make install puts them there)"
)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def short_speech(media_dir: Path) -> tuple[Path, str]:
    """About 12 s of one voice: quick to transcribe."""
    if _missing():
        pytest.skip(f"needs {', '.join(_missing())}")
    text = (
        "The city council met on Tuesday evening to discuss the new library. "
        "Several residents asked for longer opening hours on weekends. "
        "The mayor said the budget would be published next month."
    )
    return synthesize(text, media_dir / "short.wav"), text


@pytest.fixture(scope="session")
def programme(media_dir: Path) -> Programme:
    """Four corpus paragraphs in four voices with pauses: about 75 s."""
    if _missing():
        pytest.skip(f"needs {', '.join(_missing())}")
    return build_programme(media_dir / "programme", 4)


@pytest.fixture(scope="session")
def media_url(media_dir: Path, programme: Programme, short_speech: tuple[Path, str]) -> Iterator[str]:
    """Base URL of an HTTP server over the media folder."""
    with serve_directory(media_dir) as url:
        yield url
