"""Browser capture end to end: real Xvfb, PulseAudio, Chromium, FFmpeg and the ASR model.

Pages are served from 127.0.0.1, and the URL guard allows only 127.0.0.1/32: anything else a page
tries to reach (127.0.0.2, say) is refused by the egress proxy.
"""

from __future__ import annotations

import ctypes.util
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import pytest

from couchpotato.asr import FasterWhisperEngine
from couchpotato.browser import SessionResources
from couchpotato.browser.process import session_processes
from couchpotato.browser.pulse import modules_of
from couchpotato.capture import Capture, CaptureOptions
from couchpotato.health import HealthSample
from couchpotato.pipeline import Pipeline, PipelineOptions
from couchpotato.records import EndEvent, TranscriptEvent
from couchpotato.testing import serve_directory, synthesize
from couchpotato.urlguard import UrlGuard

PROGRAMS = ("Xvfb", "pulseaudio", "chromium", "ffmpeg", "espeak-ng")
GUARD = UrlGuard.from_allowlist("127.0.0.1/32")

# Two texts with no content word in common: a word of one found in the other's transcript can
# only have leaked from the other session's sound.
TEXT_A = (
    "The city council met on Tuesday evening to discuss the new library. "
    "Several residents asked for longer opening hours on weekends."
)
TEXT_B = (
    "Volcanic islands in the southern ocean are home to thousands of penguins. "
    "Scientists counted every nest along the rocky shore."
)
# A third, with no content word in common with either, for three pages at once.
TEXT_C = (
    "Farmers harvested pumpkins and carrots before the frost arrived. "
    "Their tractors rumbled through muddy fields until midnight."
)


def _missing() -> list[str]:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if ctypes.util.find_library("pulse") is None:
        missing.append("libpulse")
    return missing


requires_browser = pytest.mark.skipif(
    bool(_missing()),
    reason=f"browser capture needs {', '.join(_missing())} (make install: apt packages xvfb pulseaudio chromium)",
)


@dataclass(frozen=True)
class Site:
    """Pages and media served over HTTP from 127.0.0.1."""

    url: str
    folder: Path
    speech_a_s: float
    speech_b_s: float
    speech_c_s: float


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out)


PAGES = {
    # <audio autoplay>: plays as soon as the page loads.
    "autoplay_a.html": '<!doctype html><html><body><h1>A</h1><audio src="speech_a.wav" autoplay></audio></body></html>',
    "autoplay_b.html": '<!doctype html><html><body><h1>B</h1><audio src="speech_b.wav" autoplay></audio></body></html>',
    # Sound started by script 3 s after load, through Web Audio; the file name is assembled at run
    # time, so neither FFmpeg nor yt-dlp can find media on this page: only a browser can play it.
    "script_b.html": """<!doctype html><html><body><h1>script</h1><script>
window.addEventListener('load', () => setTimeout(async () => {
  const name = ['spe', 'ech', '_b'].join('') + '.' + ['w', 'av'].join('');
  const ctx = new AudioContext();
  const data = await (await fetch(name)).arrayBuffer();
  const buffer = await ctx.decodeAudioData(data);
  const node = ctx.createBufferSource();
  node.buffer = buffer;
  node.connect(ctx.destination);
  node.start();
  document.title = 'playing';
}, 3000));
</script></body></html>""",
    # A plain <video>: yt-dlp's generic extractors resolve it to the media file (an MP4 with its
    # index first: the test server ignores Range requests, so FFmpeg cannot seek to an index at the end).
    "video.html": '<!doctype html><html><body><video controls src="clip.mp4"></video></body></html>',
    "silent.html": "<!doctype html><html><body><p>Nothing to hear here.</p></body></html>",
    # Sound started by script after load (as a live player does), one page per text.
    **{
        f"script_{x}_1s.html": f"""<!doctype html><html><body><h1>{x}</h1><script>
window.addEventListener('load', () => setTimeout(() => {{
  const audio = new Audio('speech_{x}.wav');
  audio.play();
  document.title = 'playing';
}}, 1000));
</script></body></html>"""
        for x in "abc"
    },
}


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if _missing():
        pytest.skip(f"browser capture needs {', '.join(_missing())}")
    folder = tmp_path_factory.mktemp("site")
    a = synthesize(TEXT_A, folder / "speech_a.wav", "espeak:en-us")
    b = synthesize(TEXT_B, folder / "speech_b.wav", "flite:slt")
    c = synthesize(TEXT_C, folder / "speech_c.wav", "flite:rms")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=navy:s=160x120:r=10", "-i", str(a),
         "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart",
         str(folder / "clip.mp4")],
        check=True,
    )  # fmt: skip
    for name, html in PAGES.items():
        (folder / name).write_text(html, encoding="utf-8")
    with serve_directory(folder) as url:
        yield Site(url, folder, _duration(a), _duration(b), _duration(c))


@pytest.fixture(scope="session")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine("tiny.en", workers=1)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_released(res: SessionResources) -> None:
    """Every process and PulseAudio module the session created is gone, and its files too."""
    assert len(res.pids) >= 3, f"snapshot taken too early to mean anything: {res.pids}"
    still = [pid for pid in (*res.pids, res.xvfb_pid) if _running(pid)]
    assert not still, f"processes of session {res.tag} still running: {still}"
    assert res.groups and not session_processes(res.tag, res.groups), "a process of the session is left"
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        assert str(res.workdir) not in cmdline, f"pid {proc.pid} still uses the session's profile"
        assert f"-i {res.display}" not in cmdline, f"pid {proc.pid} still records display {res.display}"
    modules = modules_of(res.pulse_server)
    assert res.module_index not in [index for index, _, _ in modules], "the session's sink module is loaded"
    assert not any(res.sink in argument for _, _, argument in modules)
    assert not res.workdir.exists()


@dataclass
class PageRun:
    """What one capture of a page produced."""

    source_kind: str
    reason: str
    text: str
    error: str
    resources: SessionResources | None
    health: list[HealthSample]


async def capture_page(
    url: str,
    engine: FasterWhisperEngine,
    options: CaptureOptions,
    *,
    guard: UrlGuard = GUARD,
) -> PageRun:
    """Capture ``url`` through the whole pipeline; the session's resources are snapshotted just
    before it ends (when Chromium is fully up), for ``assert_released``."""
    samples: list[HealthSample] = []
    options = replace(options, on_health=samples.append)
    pipeline = Pipeline(engine, PipelineOptions(asr_workers=1))
    texts: list[str] = []
    error = ""
    resources = None
    async with Capture(url, guard, options) as cap:
        assert cap.source is not None
        async for event in pipeline.events(cap.pcm(), cap.info()):
            if isinstance(event, TranscriptEvent):
                texts.append(event.text)
            elif isinstance(event, EndEvent):
                error = event.error
                if cap.browser is not None:
                    resources = await cap.browser.resources()
        kind, reason = cap.source.kind, cap.source.reason
    return PageRun(kind, reason, " ".join(texts), error, resources, samples)
