"""Pages captured as a user runs them, through the ``couchpotato`` command in its own process.

- A page that speaks, then stays silent for longer than the no-audio timeout, is still live: the
  capture goes on to ``--duration``, exits 0 with its words, and reports the silence as a health
  state (``silent``, with its length), not as an error.
- A Chromium that renders nothing is replaced by a new one in the same session.
- Pages started in the same instant from separate processes (two, then three: each its own Chromium,
  Xvfb, sink and model, as separate users' commands are) each hear only their own page.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from couchpotato.browser.constants import FIRST_FRAME_TIMEOUT_S
from couchpotato.testing import normalise, serve_in_turns, wer
from tests.browser.conftest import TEXT_A, TEXT_B, TEXT_C, Site, requires_browser

pytestmark = [pytest.mark.e2e, requires_browser]

CLI = Path(sys.executable).with_name("couchpotato")
WER_BOUND = 0.15  # as in test_capture.py: three words of twenty
TEXTS = {"a": TEXT_A, "b": TEXT_B, "c": TEXT_C}


@dataclass
class CliRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    @property
    def text(self) -> str:
        return " ".join(e["text"] for e in self.events if e["type"] == "segment")

    def health(self) -> list[dict[str, Any]]:
        """The health samples ``-v`` logged, in order."""
        prefix = "couchpotato: health: "
        return [json.loads(ln[len(prefix) :]) for ln in self.stderr.splitlines() if ln.startswith(prefix)]


def _start(url: str, *args: str) -> subprocess.Popen[str]:
    if not CLI.exists():
        pytest.skip(f"{CLI} is not installed (make install)")
    env = {**os.environ, "COUCHPOTATO_URL_ALLOWLIST": "127.0.0.1/32"}
    argv = [str(CLI), "transcribe", url, "--mode", "browser", "--format", "jsonl", "--asr-workers", "1", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen[str], timeout_s: float) -> CliRun:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"couchpotato did not finish within {timeout_s:.0f} s: {err[-2000:]}") from None
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    return CliRun(proc.returncode, events, err)


def distinct_words(text: str, others: list[str]) -> set[str]:
    """Words of ``text`` of five letters or more that none of ``others`` contains."""
    theirs = {w for other in others for w in normalise(other).split()}
    return {w for w in normalise(text).split() if len(w) >= 5} - theirs


def test_a_page_silent_after_its_speech_is_still_live(site: Site) -> None:
    # The case: about 9 s of speech, then silence to --duration 60, longer than the
    # default no-audio timeout (30 s). Before the fix this ended at ~40 s with no_audio and exit 1.
    run = _finish(_start(f"{site.url}/autoplay_a.html", "--duration", "60", "-v"), 150)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "couchpotato: error" not in run.stderr, run.stderr[-3000:]
    assert wer(TEXT_A, run.text) <= WER_BOUND, run.text
    end = run.events[-1]
    assert end["type"] == "end" and end["reason"] == "end_of_source" and not end.get("error"), end
    health = run.health()
    assert health[-1]["media_s"] >= 59, health[-1]
    # the silence after the speech is a health state with its length, up to the end
    assert health[-1]["status"] == "silent" and health[-1]["heard_sound"], health[-1]
    assert health[-1]["silent_s"] >= 60 - site.speech_a_s - 6, health[-1]
    assert not any(h["status"] == "no_audio" for h in health)
    # and the user is told, in one line, that the page went quiet and is still being captured
    assert "has been silent for 30 s; still capturing" in run.stderr, run.stderr[-3000:]


def test_the_silence_timeout_ends_a_page_after_sound_when_asked(site: Site) -> None:
    run = _finish(
        _start(f"{site.url}/autoplay_b.html", "--duration", "60", "--no-audio-timeout", "3", "--silence-timeout", "4"),
        120,
    )
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert run.returncode == 1, run.stderr
    assert lines[-1].startswith("couchpotato: error: silence_timeout: ") and "after sound" in lines[-1], lines
    assert "Traceback" not in run.stderr
    assert wer(TEXT_B, run.text) <= WER_BOUND, run.text  # what was said is still delivered
    assert run.events[-1]["type"] == "end" and run.events[-1]["reason"] == "error"


@pytest.mark.parametrize("pages", [2, 3])
def test_pages_started_at_once_from_separate_processes_each_hear_their_own(site: Site, pages: int) -> None:
    names = "abc"[:pages]
    length = {"a": site.speech_a_s, "b": site.speech_b_s, "c": site.speech_c_s}
    duration = max(length[x] for x in names) + 4.0  # the page starts its sound 1 s after load
    procs = {x: _start(f"{site.url}/script_{x}_1s.html", "--duration", f"{duration:.1f}") for x in names}
    runs = {x: _finish(p, 180) for x, p in procs.items()}
    for x, run in runs.items():
        assert run.returncode == 0, f"page {x}: {run.stderr[-2000:]}"
        assert wer(TEXTS[x], run.text) <= WER_BOUND, f"page {x}: {run.text}"
        heard = set(normalise(run.text).split())
        for y in names:
            if y != x:
                others = [TEXTS[z] for z in names if z != y]
                leaked = heard & distinct_words(TEXTS[y], others)
                assert not leaked, f"page {x} heard page {y}'s words {leaked}: {run.text}"


def test_the_cli_replaces_a_chromium_that_renders_nothing(site: Site) -> None:
    # The first Chromium that opens the page spins before its first frame (a Chromium that starts and
    # draws nothing); the command starts a new one in the same session, which plays the speech.
    hang = "<!doctype html><html><head><script>while (true) {}</script></head><body>never drawn</body></html>"
    good = '<!doctype html><html><body><h1>A</h1><audio src="speech_a.wav" autoplay></audio></body></html>'
    with serve_in_turns(site.folder, "turns.html", [hang, good]) as (url, served):
        run = _finish(_start(url, "--duration", f"{FIRST_FRAME_TIMEOUT_S + site.speech_a_s + 8:.0f}"), 150)
    assert run.returncode == 0, run.stderr[-3000:]
    notes = [ln for ln in run.stderr.splitlines() if "starting a new Chromium" in ln]
    assert len(notes) == 1 and "the page has rendered no frame 15 s after Chromium started" in notes[0], run.stderr
    assert len(served) == 2, served
    assert wer(TEXT_A, run.text) <= WER_BOUND, run.text
