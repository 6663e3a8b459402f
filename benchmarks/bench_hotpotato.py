"""Benchmark of HotPotato: swapping a live session's capture instance. Prints Markdown tables.

    .venv/bin/python benchmarks/bench_hotpotato.py [--paragraphs N] [--interval S] [--kills N] [--quick]
                                                    [--out benchmarks/results/hotpotato.md] [--json RAW.json]

Everything is real: Redis (a key prefix of its own, deleted afterwards), a capture worker and an ASR
worker in this process (``katopotato.worker.Worker``), FFmpeg, the tiny.en model, and for pages
Xvfb + PulseAudio + Chromium. The programme is generated speech (``couchpotato.testing.build_programme``:
``--paragraphs`` corpus paragraphs in rotating voices, 6 by default: about 2 minutes), so its audio
and its words are known.

Two phases, each running its sessions at the same time:

1. Live HLS made by ``ffmpeg -re`` (1 s segments), four sessions on the same programme:
   - **baseline**: no swaps (the reference for words and WER);
   - **API swaps**: ``request_swap`` once every ``--interval`` s of media (15 s), each waited for
     until completed or failed; no request once less than ``--margin`` s of programme is left;
   - **kill -9**: the capture's FFmpeg killed ``--kills`` times (first at 20 s of media, then every
     ``--kill-every`` s), the stream keeping a live window of ``--window`` segments;
   - **baseline, again**: a second run without swaps, whose WER difference to the first is the
     noise floor of the WER figure (the ASR's random fallback decodes the same audio differently).
2. Sources without media timestamps, aligned by cross-correlation, swapped every ``--interval`` s:
   - **browser**: a page that plays the programme in step with the wall clock (Web Audio, like two
     viewers of one live channel), captured by Chromium; each swap starts a second Chromium;
   - **direct, no timestamps**: live HLS with the stream time of the first sample switched off for
     this session (``SessionCapture._direct_options`` is wrapped in this process: ``timestamps=False``,
     which is what the product does for RTSP, standard input and PulseAudio sources), so that the
     product aligns a direct source by cross-correlation with its wall-clock prior.

Measurements (``hotpotato.testing``):

- **alignment error**: every committed segment's audio is found in the programme by normalised
  cross-correlation (``clock_offsets``); programme time minus session time is the session clock's
  offset, one value per epoch (capture instance) as long as nothing is lost or repeated. The step of
  that offset across a swap (``epoch_steps``) is the swap's alignment error: positive, audio skipped;
  negative, audio repeated. Only steps between consecutive epochs (one swap) are counted.
- **words lost / doubled**: ``swap_word_errors`` around each cut (±3 s), against the baseline's words,
  both aligned to the programme's text; WER (``couchpotato.testing.wer``) of each whole run.
- **kill -9**: from the kill to ``swap_started`` (detection), to ``swap_completed`` (takeover), to the
  new instance's first segment being cut (its ASR job created) and committed (its transcript event
  read); the records' ``detection_s`` and ``lost_s``; and the clock step across the kill (audio).

The machine is shared: other work on it slows capture, VAD and ASR, and so the timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
import wave
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from couchpotato.records import EndEvent, Event, GapEvent, Segment, SessionEvent, TranscriptEvent, Word
from couchpotato.testing import Programme, build_programme, hls_live, serve_directory, wer
from hotpotato.records import SwapEvent
from hotpotato.testing import LIVE_PAGE, CutWords, clock_offsets, epoch_steps, swap_word_errors
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.blobs import FileBlobStore
from katopotato.broker.redis import RedisBroker
from katopotato.capture import SessionCapture
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import ASR_KIND, start_session, transcript_events
from katopotato.worker import Worker

SR = 16_000
XCORR_GOAL_MS = 20.0
DETECTION_GOAL_S = 5.0  # hotpotato.supervisor: "a broken capture is acted on within 5 s"
WER_GOAL_POINTS = 0.5
NO_TIMESTAMPS_PREFIX = "hp-nots-"
REDIS = os.environ.get("COUCHPOTATO_REDIS", "redis://127.0.0.1:6379/0")

# --- fixtures: live HLS, a live page, a cluster ---------------------------------------------------


def start_stream(stack: contextlib.ExitStack, programme: Programme, folder: Path, window: int = 6) -> str:
    playlist = stack.enter_context(hls_live(programme.path, folder, window=window))
    base = stack.enter_context(serve_directory(folder))
    return f"{base}/{playlist.name}"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def capture_ffmpeg(url_part: str) -> psutil.Process | None:
    """The newest FFmpeg of this process decoding a direct source whose URL contains ``url_part``."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = p.cmdline()
            created = p.create_time()
        except psutil.Error:
            continue
        decoding = cmd and os.path.basename(cmd[0]) == "ffmpeg" and "pipe:1" in cmd and "-hls_time" not in cmd
        if decoding and any(url_part in a for a in cmd):
            found.append((created, p))
    return max(found, key=lambda x: x[0])[1] if found else None


def without_timestamps_for_some_sessions() -> None:
    """Sessions whose id starts with NO_TIMESTAMPS_PREFIX read their direct source without the stream
    time of the first sample, as the product reads an RTSP stream: swaps align by cross-correlation."""
    original = SessionCapture._direct_options

    async def direct_options(self: SessionCapture, cap: Any, **changes: Any) -> Any:
        options = await original(self, cap, **changes)
        if self.sid.startswith(NO_TIMESTAMPS_PREFIX):
            options = dataclasses.replace(options, timestamps=False)
        return options

    SessionCapture._direct_options = direct_options  # type: ignore[method-assign]


# --- one session: drive it, then collect what it produced -------------------------------------------


@dataclass
class Kill:
    at: float  # wall clock of the kill
    media_s: float  # session media time the capture had reached


@dataclass
class Session:
    """A session being run: what drove it, and what it produced."""

    label: str
    sid: str
    programme: Programme
    events: list[tuple[float, Event]] = field(default_factory=list)  # (read at, event)
    swaps: list[SwapEvent] = field(default_factory=list)
    segments: list[tuple[Segment, np.ndarray]] = field(default_factory=list)
    cut_at: dict[int, float] = field(default_factory=dict)  # seq -> its ASR job's creation (segment cut)
    requested: int = 0
    refused: list[str] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    follower: asyncio.Task[None] | None = None

    @property
    def commits(self) -> list[TranscriptEvent | GapEvent]:
        return [e for _, e in self.events if isinstance(e, TranscriptEvent | GapEvent)]

    @property
    def words(self) -> list[Word]:
        return [w for _, e in self.events if isinstance(e, TranscriptEvent) for w in e.words]

    @property
    def text(self) -> str:
        return " ".join(e.text for _, e in self.events if isinstance(e, TranscriptEvent))

    def of(self, kind: str) -> list[SwapEvent]:
        return [s for s in self.swaps if s.type == kind]

    def complete(self) -> str:
        """'yes' when the session went from its session event to end_of_source with every seq once, in
        order, and no gap; else what was wrong."""
        events = [e for _, e in self.events]
        problems = []
        if not events or not isinstance(events[0], SessionEvent):
            problems.append("no session event first")
        end = events[-1] if events else None
        if not isinstance(end, EndEvent):
            return "no end event"
        if end.reason != "end_of_source" or end.error:
            problems.append(f"ended: {end.reason} {end.error}".strip())
        if [e.seq for e in self.commits] != list(range(end.segments)):
            problems.append("seqs not each once in order")
        gaps = sum(isinstance(e, GapEvent) for e in self.commits)
        if gaps:
            problems.append(f"{gaps} gap(s)")
        return "; ".join(problems) or "yes"


async def follow(sched: Scheduler, s: Session) -> None:
    async for _id, ev in transcript_events(sched.broker, s.sid):
        s.events.append((time.time(), ev))


async def begin(sched: Scheduler, s: Session, source: str, *, wait_audio: bool = False, **options: Any) -> Session:
    """Start the session; with ``wait_audio``, return once its capture has read audio (starting the
    next stream blocks this event loop, the worker's too, for a second or two)."""
    await start_session(sched, s.sid, source, **options)
    s.follower = asyncio.create_task(follow(sched, s))
    if wait_audio:
        await wait_media(sched, s.sid, 0.1, timeout_s=30)
    return s


async def collect(sched: Scheduler, blobs: FileBlobStore, s: Session, timeout_s: float) -> None:
    """Wait for the session's end; then its swap events and its segments' audio."""
    assert s.follower is not None
    try:
        async with asyncio.timeout(timeout_s):
            await s.follower
    except TimeoutError:
        s.notes.append(f"did not end within {timeout_s:.0f} s")
    s.swaps = [e for _id, e in await swap_events(sched.broker, s.sid)]
    seen: dict[int, tuple[Segment, float]] = {}
    for job in await sched.list(kind=ASR_KIND, limit=5000):
        if job.params.get("session_id") == s.sid:
            seg = Segment.from_dict(job.params["segment"])
            if seg.seq not in seen or job.created_at < seen[seg.seq][1]:
                seen[seg.seq] = (seg, job.created_at)
    for seq in sorted(seen):
        seg, created = seen[seq]
        s.cut_at[seq] = created
        data = await blobs.get(seg.audio)
        s.segments.append((seg, np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0))


async def health_media_s(sched: Scheduler, sid: str) -> tuple[float, bool]:
    status = await swap_status(sched, sid)
    health, capture = status["health"], status["capture"]
    media = float(health["probe"]["media_s"]) if health else 0.0
    return media, bool(capture and capture["source_done"])


async def wait_media(sched: Scheduler, sid: str, seconds: float, timeout_s: float = 180) -> bool:
    """Until the session's capture has read ``seconds`` of media; False if its source ended first."""
    async with asyncio.timeout(timeout_s):
        while True:
            media, done = await health_media_s(sched, sid)
            if media >= seconds:
                return True
            if done:
                return False
            await asyncio.sleep(0.25)


async def swap_over(sched: Scheduler, sid: str, newer_than: float, swap_id: str | None = None) -> dict[str, Any]:
    """The session's swap (``swap_id``, or the first one requested after ``newer_than``) once it is over."""
    async with asyncio.timeout(120):
        while True:
            swap = (await swap_status(sched, sid))["swap"]
            if (
                swap
                and (swap_id is None or swap["id"] == swap_id)
                and swap["requested_at"] >= newer_than - 0.01
                and swap["phase"] in ("completed", "failed")
            ):
                return dict(swap)
            await asyncio.sleep(0.2)


async def api_swaps(sched: Scheduler, s: Session, interval_s: float, last_s: float) -> None:
    """``request_swap`` every ``interval_s`` of media until ``last_s``; each waited for."""
    k = 1
    while k * interval_s <= last_s:
        if not await wait_media(sched, s.sid, k * interval_s):
            break
        before = time.time()
        try:
            swap = await request_swap(sched, s.sid, f"benchmark: swap {k} every {interval_s:.0f} s")
        except Exception as e:  # SwapRefused: reported, not hidden
            s.refused.append(f"{type(e).__name__}: {e}")
            k += 1
            continue
        s.requested += 1
        await swap_over(sched, s.sid, before, swap.id)
        k += 1


async def kill_ffmpeg(sched: Scheduler, s: Session, url: str, first_s: float, every_s: float, kills: int) -> None:
    """kill -9 the session's capture FFmpeg at ``first_s``, ``first_s + every_s``… of media."""
    for k in range(kills):
        if not await wait_media(sched, s.sid, first_s + k * every_s):
            s.notes.append(f"the source ended before kill {k + 1}")
            return
        victim = capture_ffmpeg(url)
        if victim is None:
            s.notes.append(f"kill {k + 1}: no capture FFmpeg found")
            continue
        media, _ = await health_media_s(sched, s.sid)
        killed_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        s.kills.append(Kill(killed_at, media))
        await swap_over(sched, s.sid, killed_at)


async def guarded(s: Session, what: Awaitable[None]) -> None:
    try:
        await what
    except Exception as e:
        s.notes.append(f"driver stopped: {type(e).__name__}: {e}")


# --- measurements -------------------------------------------------------------------------------------


@dataclass
class SwapRow:
    """One completed swap of a session, measured."""

    session: str
    n: int
    trigger: str
    mode: str
    method: str
    confidence: float | None
    est_error_ms: float | None
    cut_s: float
    takeover_s: float | None
    step_ms: float | None  # measured alignment error (clock step), None: not measurable
    lost_s: float
    words: CutWords | None = None
    control: CutWords | None = None  # the baseline measured against itself at the same cut
    lead_in_s: float | None = None  # audio before keep_start in the new instance's first segment
    base_lead_in_s: float | None = None  # …and in the baseline's segment of the same seq


def lead_in(s: Session, seq: int, keep_start: float | None = None) -> float | None:
    """Seconds of audio before its owned span that segment ``seq`` was transcribed with (its lead-in
    context); None if there is no such segment (or, with ``keep_start``, it starts elsewhere)."""
    for seg, _ in s.segments:
        if seg.seq == seq and (keep_start is None or abs(seg.keep_start - keep_start) < 0.1):
            return max(0.0, seg.keep_start - seg.start)
    return None


def measure_swaps(s: Session, programme_pcm: np.ndarray, baseline: Session | None) -> tuple[list[SwapRow], float]:
    """Each completed swap of ``s`` with its measured clock step and word errors; and the largest
    clock spread within one epoch (ms)."""
    places = clock_offsets(programme_pcm, s.segments)
    medians, _, spread = epoch_steps(places)
    done = s.of("swap_completed")
    cut_words: dict[float, CutWords] = {}
    control: dict[float, CutWords] = {}
    if baseline is not None and done:
        cuts = [float(d.details["cut_s"]) for d in done]
        for cw in swap_word_errors(s.programme.text, baseline.words, s.words, cuts):
            cut_words[cw.cut_s] = cw
        for cw in swap_word_errors(s.programme.text, baseline.words, baseline.words, cuts):
            control[cw.cut_s] = cw
    rows = []
    for i, d in enumerate(done, start=1):
        alignment = d.details.get("alignment") or {}
        step = None
        if d.epoch in medians and d.epoch - 1 in medians:
            step = 1000 * (medians[d.epoch] - medians[d.epoch - 1])
        rows.append(
            SwapRow(
                s.label,
                i,
                d.trigger,
                d.mode,
                str(alignment.get("method", "?")),
                alignment.get("confidence"),
                alignment.get("error_ms"),
                float(d.details["cut_s"]),
                d.details.get("takeover_s"),
                step,
                float(d.details.get("lost_s", 0.0)),
                cut_words.get(float(d.details["cut_s"])),
                control.get(float(d.details["cut_s"])),
                lead_in(s, int(d.details["next_seq"])),
                None if baseline is None else lead_in(baseline, int(d.details["next_seq"]), float(d.details["cut_s"])),
            )
        )
    return rows, 1000 * spread


def joined_at(s: Session, programme_pcm: np.ndarray) -> float | None:
    """Where in the programme the session's first capture instance started (seconds): its first
    epoch's clock offset. Sessions that join at the same point are segmented alike until a swap."""
    places = clock_offsets(programme_pcm, s.segments)
    if not places:
        return None
    first = min(p.epoch for p in places)
    return float(np.median([p.offset_s for p in places if p.epoch == first]))


def words_cell(cw: CutWords | None) -> str:
    if cw is None:
        return "n/a"
    listed = " ".join(cw.lost + cw.doubled)
    return f"{len(cw.lost)} / {len(cw.doubled)}" + (f" ({listed})" if listed else "")


def mean_max(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    return f"{statistics.mean(xs):.2f} / {max(xs):.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def fmt(x: float | None, spec: str = ".2f") -> str:
    if x is None:
        return "n/a"
    out = format(x, spec)
    return out.replace("-", "").replace("+", "") if float(out) == 0 else out  # no "-0.000"


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    sched: Scheduler
    blobs: FileBlobStore


@contextlib.asynccontextmanager
async def cluster(url: str, blobs_dir: Path) -> Any:
    settings = {"allow_local": True, "url_allowlist": "127.0.0.1/32"}
    reg = load_plugins(installed=False, settings={"transcription": settings})
    async with RedisBroker(url) as broker:
        blobs = FileBlobStore(blobs_dir)
        async with (
            Worker(broker, reg, blobs=blobs, kinds=["capture"], concurrency=8, name="bench-capture", visibility_s=10),
            Worker(broker, reg, blobs=blobs, kinds=["asr"], concurrency=2, name="bench-asr"),
        ):
            yield Cluster(Scheduler(broker, reg), blobs)


def delete_keys(url: str) -> None:
    import redis

    _, prefix = url.split("prefix=")
    r = redis.Redis.from_url(url.split("?")[0])
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


def sid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


async def run(args: argparse.Namespace, tmp: Path) -> tuple[list[Session], Programme, float]:
    programme = build_programme(tmp / "programme", args.paragraphs)
    programme_s = programme.duration_s
    log(f"programme: {args.paragraphs} paragraphs, {programme_s:.1f} s")
    url = f"{REDIS}?prefix=bench-hotpotato-{os.getpid()}-{uuid.uuid4().hex[:8]}:"
    timeout = programme_s + 180
    try:
        async with cluster(url, tmp / "blobs") as c:
            sched = c.sched
            # phase 1: live HLS: baseline, API swaps, kill -9
            with contextlib.ExitStack() as stack:
                # Each session starts as soon as its stream lists its first segment, so that FFmpeg
                # opens the playlist while it is shorter than its 3-segment live edge and every session
                # hears the programme from its first second: sessions that join alike are cut alike.
                base_url = start_stream(stack, programme, tmp / "hls-base")
                base = await begin(sched, Session("baseline", sid("hp-base-"), programme), base_url, wait_audio=True)
                again_url = start_stream(stack, programme, tmp / "hls-base-again")
                again = await begin(
                    sched, Session("baseline, again", sid("hp-again-"), programme), again_url, wait_audio=True
                )
                swap_url = start_stream(stack, programme, tmp / "hls-swap")
                swapped = await begin(
                    sched, Session("API swaps", sid("hp-swap-"), programme), swap_url, wait_audio=True
                )
                kill_url = start_stream(stack, programme, tmp / "hls-kill", window=args.window)
                killed = await begin(sched, Session("kill -9", sid("hp-kill-"), programme), kill_url, wait_audio=True)
                log("phase 1: live HLS, 4 sessions")
                await asyncio.gather(
                    guarded(swapped, api_swaps(sched, swapped, args.interval, programme_s - args.margin)),
                    guarded(killed, kill_ffmpeg(sched, killed, kill_url, 20.0, args.kill_every, args.kills)),
                )
                for s in (base, swapped, killed, again):
                    await collect(sched, c.blobs, s, timeout)
            # phase 2: no timestamps: a live page in Chromium, live HLS without stream time
            site = tmp / "site"
            site.mkdir()
            shutil.copy(programme.path, site / "programme.wav")
            (site / "live.html").write_text(LIVE_PAGE, encoding="utf-8")
            with contextlib.ExitStack() as stack:
                site_base = stack.enter_context(serve_directory(site))
                t0 = time.time() + 4.0
                page_url = f"{site_base}/live.html?src=programme.wav&t0={t0:.3f}"
                page_s = programme_s + 8.0
                page = await begin(
                    sched,
                    Session("browser", sid("hp-page-"), programme),
                    page_url,
                    mode="browser",
                    duration_s=page_s,
                )
                nots_url = start_stream(stack, programme, tmp / "hls-nots")
                nots = await begin(sched, Session("direct, no timestamps", sid(NO_TIMESTAMPS_PREFIX), programme),
                                   nots_url, wait_audio=True)  # fmt: skip
                log("phase 2: browser and direct without timestamps, 2 sessions")
                await asyncio.gather(
                    guarded(page, api_swaps(sched, page, args.interval, page_s - args.page_margin)),
                    guarded(nots, api_swaps(sched, nots, args.interval, programme_s - args.margin)),
                )
                for s in (page, nots):
                    await collect(sched, c.blobs, s, timeout)
    finally:
        await asyncio.to_thread(delete_keys, url)
    return [base, swapped, killed, page, nots, again], programme, programme_s


def raw(s: Session) -> dict[str, Any]:
    """What a session produced, for a closer look (``--json``)."""
    return {
        "label": s.label,
        "session_id": s.sid,
        "text": s.text,
        "words": [[round(w.start, 3), round(w.end, 3), w.word] for w in s.words],
        "swaps": [e.to_dict() for e in s.swaps],
        "kills": [dataclasses.asdict(k) for k in s.kills],
        "segments": [
            {"seq": g.seq, "epoch": g.epoch, "start": g.start, "end": g.end, "keep": [g.keep_start, g.keep_end]}
            for g, _ in s.segments
        ],
        "notes": s.notes + s.refused,
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(
    args: argparse.Namespace, sessions: list[Session], programme: Programme, t_start: float, load0: float
) -> str:
    base, swapped, killed, page, nots, again = sessions
    pcm = read_wav(programme.path)
    measured: dict[str, tuple[list[SwapRow], float]] = {}
    for s in sessions[1:]:
        log(f"measuring {s.label}")
        measured[s.label] = measure_swaps(s, pcm, base)
    rows_all = [r for s in sessions[1:] for r in measured[s.label][0]]

    def errors(label: str, method: str, mode: str | None = None) -> list[float]:
        return [abs(r.step_ms) for r in measured[label][0]
                if r.method == method and r.step_ms is not None and (mode is None or r.mode == mode)]  # fmt: skip

    def align_row(what: str, label: str, method: str, mode: str | None = None) -> list[str]:
        errs = errors(label, method, mode)
        done = [r for r in measured[label][0] if mode is None or r.mode == mode]
        other = sorted({r.method for r in done if r.method != method})
        unmeasured = [r for r in done if r.method == method and r.step_ms is None]
        n = f"{len(errs)} of {len(done)} completed"
        if unmeasured:
            n += f"; {len(unmeasured)} not measurable: no segment found in the programme on one side of the cut"
        if other:
            n += f"; others aligned by {', '.join(other)}"
        met = yes(bool(errs) and max(errs) <= XCORR_GOAL_MS) if errs else "**not measured**"
        return [what, f"≤ {XCORR_GOAL_MS:.0f} ms", f"{mean_max(errs)} ms (n = {n})", met]

    # figure 2
    base_wer, swap_wer = 100 * wer(programme.text, base.text), 100 * wer(programme.text, swapped.text)
    again_wer = 100 * wer(programme.text, again.text)
    api_rows = measured[swapped.label][0]
    lost = [w for r in api_rows if r.words for w in r.words.lost]
    doubled = [w for r in api_rows if r.words for w in r.words.doubled]
    control_doubled = [w for r in api_rows if r.control for w in r.control.doubled]
    n_started, n_done, n_failed = (len(swapped.of(k)) for k in ("swap_started", "swap_completed", "swap_failed"))
    # figure 3
    kill_rows = []
    detections, firsts, lost_audio = [], [], []
    for k, kill in enumerate(killed.kills, start=1):
        started = next((e for e in killed.of("swap_started") if e.at >= kill.at), None)
        done = next((e for e in killed.of("swap_completed") if e.at >= kill.at), None)
        failed = next((e for e in killed.of("swap_failed") if e.at >= kill.at), None)
        row = next((r for r in measured[killed.label][0] if done and r.cut_s == float(done.details["cut_s"])), None)
        first_cut = first_commit = None
        if done is not None:
            seq = int(done.details["next_seq"])
            first_cut = killed.cut_at.get(seq)
            first_commit = next((t for t, e in killed.events if isinstance(e, TranscriptEvent | GapEvent)
                                 and e.seq == seq), None)  # fmt: skip
        detection = started.at - kill.at if started else None
        if detection is not None:
            detections.append(detection)
        if first_commit is not None:
            firsts.append(first_commit - kill.at)
        if done is not None:
            lost_audio.append(float(done.details.get("lost_s", 0.0)))
        kill_rows.append(
            [
                str(k),
                f"{kill.media_s:.1f}",
                f"{started.trigger}: {started.reason}" if started else "no swap_started",
                fmt(detection),
                fmt(started.details.get("detection_s") if started else None, ".3f"),
                fmt(done.at - kill.at if done else None),
                fmt(first_cut - kill.at if first_cut else None),
                fmt(first_commit - kill.at if first_commit else None),
                fmt(float(done.details.get("lost_s", 0.0)) if done else None, ".3f"),
                fmt(row.step_ms if row else None, "+.3f"),
                "n/a"
                if row is None
                else words_cell(row.words) + (f"; control {len(row.control.doubled)} doubled" if row.control else ""),
                "completed" if done else (f"failed: {failed.details.get('error')}" if failed else "?"),
            ]
        )
    kill_words = [r.words for r in measured[killed.label][0] if r.words]
    kill_wer = 100 * wer(programme.text, killed.text)
    event_counts: dict[tuple[str, str], int] = {}
    for sess in sessions:
        for e in sess.swaps:
            event_counts[(e.type, e.trigger)] = event_counts.get((e.type, e.trigger), 0) + 1
    wall_s = time.monotonic() - t_start

    summary = [
        align_row("1a. alignment error, cross-correlation, browser capture (|clock step|, mean / max)",
                  page.label, "xcorr"),
        align_row("1b. alignment error, timestamps, direct live HLS (overlap swaps)", swapped.label, "timestamps"),
        align_row("1c. alignment error, cross-correlation, direct live HLS without timestamps",
                  nots.label, "xcorr"),
        align_row("1d. alignment error, timestamps, direct live HLS resumed after kill -9 (no overlap)",
                  killed.label, "timestamps", "resume"),
        ["2a. words lost at the API swaps (vs the run without swaps)", "0",
         f"{len(lost)} over {len(api_rows)} swaps" + (f": {' '.join(lost)}" if lost else ""), yes(not lost)],
        ["2b. words doubled at the API swaps", "0",
         f"{len(doubled)} over {len(api_rows)} swaps" + (f": {' '.join(doubled)}" if doubled else "")
         + f" (control, the baseline by the same measure at the same cuts: {len(control_doubled)}"
         + (f": {' '.join(control_doubled)}" if control_doubled else "") + ")",
         yes(not doubled)],
        ["2c. WER with swaps − WER without (points)", f"≤ {WER_GOAL_POINTS}",
         f"{swap_wer - base_wer:+.2f} ({swap_wer:.2f} % vs {base_wer:.2f} %)",
         yes(swap_wer - base_wer <= WER_GOAL_POINTS)],
        ["2d. API swaps requested / started / completed / failed (refused)", "all completed",
         f"{swapped.requested} / {n_started} / {n_done} / {n_failed} ({len(swapped.refused)})",
         yes(swapped.requested > 0 and n_done == swapped.requested and not n_failed and not swapped.refused)],
        ["2e. noise floor: WER of a second run without swaps − WER of the first (points)", "—",
         f"{again_wer - base_wer:+.2f} ({again_wer:.2f} % vs {base_wer:.2f} %)", "—"],
        ["3a. kill -9 of FFmpeg → swap_started (detection, mean / max)", f"≤ {DETECTION_GOAL_S:.0f} s",
         f"{mean_max(detections)} s (n = {len(detections)} of {len(killed.kills)} kills)",
         yes(bool(detections) and len(detections) == len(killed.kills) and max(detections) <= DETECTION_GOAL_S)],
        ["3b. kill -9 → first segment of the new instance committed (mean / max)", "—",
         f"{mean_max(firsts)} s (n = {len(firsts)})", "—"],
        [f"3c. audio lost at kill -9, live window of {args.window} s (record lost_s, max)", "0 s",
         f"{max(lost_audio):.3f} s (n = {len(lost_audio)})" if lost_audio else "n/a",
         yes(bool(lost_audio) and max(lost_audio) == 0.0 and len(lost_audio) == len(killed.kills))],
    ]  # fmt: skip

    out = [
        f"# HotPotato benchmark ({time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores, "
        f"load average {load0:.1f} at start)",
        "",
        f"`{' '.join(['.venv/bin/python', 'benchmarks/bench_hotpotato.py', *sys.argv[1:]])}` "
        f"— programme {programme.duration_s:.0f} s ({args.paragraphs} corpus paragraphs), tiny.en, swaps every "
        f"{args.interval:.0f} s of media, kill -9 × {args.kills}; run time {wall_s / 60:.1f} min.",
        "",
        "## Figures against their goals",
        "",
        table(["figure", "goal", "measured", "met"], summary),
        "",
        "## Sessions",
        "",
        table(
            [
                "session",
                "source",
                "segments",
                "complete (every seq once, no gap, end of source)",
                "WER %",
                "swaps started / completed / failed",
                "max clock spread in an epoch (ms)",
                "joined the programme at (s)",
                "notes",
            ],
            [
                [
                    s.label,
                    source,
                    str(len(s.commits)),
                    s.complete(),
                    f"{100 * wer(programme.text, s.text):.2f}",
                    " / ".join(str(len(s.of(k))) for k in ("swap_started", "swap_completed", "swap_failed")),
                    f"{measured[s.label][1]:.3f}" if s.label in measured and s.swaps else "—",
                    fmt(joined_at(s, pcm)),
                    "; ".join(s.notes + s.refused) or "",
                ]
                for s, source in (
                    (base, "live HLS"),
                    (again, "live HLS"),
                    (swapped, "live HLS"),
                    (killed, f"live HLS, window {args.window} s"),
                    (page, "live page, Chromium"),
                    (nots, "live HLS, timestamps off"),
                )
            ],
        ),
        "",
        "## Every completed swap",
        "",
        "Clock step: the session clock's offset into the programme after the swap minus before "
        "(positive: audio skipped, negative: repeated) — the alignment error as measured. The record's "
        "estimate is the alignment's own `error_ms`. Words: lost / doubled within 3 s of the cut, "
        "against the baseline (`swap_word_errors`; for the page, whose audio path differs, that baseline is "
        "still the HLS one, so its own ASR differences count too); control: the same measure of the baseline "
        "against itself at the same cut (its own ASR insertions, which the measure counts as doubled). "
        "Lead-in: audio before its owned span that the new instance's first segment was transcribed with, "
        "and the baseline's segment of the same seq (when it starts at the same point).",
        "",
        table(
            [
                "session",
                "#",
                "trigger",
                "mode",
                "method",
                "confidence",
                "estimate (ms)",
                "clock step (ms)",
                "cut (s)",
                "takeover (s)",
                "lost_s",
                "words lost / doubled",
                "control: doubled in the baseline there",
                "lead-in of the first new segment (s): this run / baseline",
            ],
            [
                [
                    r.session,
                    str(r.n),
                    r.trigger,
                    r.mode,
                    r.method,
                    fmt(r.confidence, ".3f"),
                    fmt(r.est_error_ms, ".3f"),
                    fmt(r.step_ms, "+.3f"),
                    f"{r.cut_s:.2f}",
                    fmt(r.takeover_s),
                    f"{r.lost_s:.3f}",
                    words_cell(r.words),
                    "n/a" if r.control is None else words_cell(r.control).split(" / ", 1)[1],
                    f"{fmt(r.lead_in_s)} / {fmt(r.base_lead_in_s)}",
                ]
                for r in rows_all
            ],
        ),
        "",
        f"## kill -9 of the capture's FFmpeg (live HLS, live window {args.window} × 1 s segments)",
        "",
        "Seconds from the kill. Detection: to `swap_started`; the record's `detection_s` is from the "
        "supervisor's evidence to its decision. Takeover: to `swap_completed`. First segment: the new "
        "instance's first seq cut (its ASR job created) and committed (its transcript event read).",
        "",
        table(
            [
                "kill",
                "media (s)",
                "swap",
                "detection (s)",
                "record detection_s",
                "takeover (s)",
                "first segment cut (s)",
                "first segment committed (s)",
                "lost_s",
                "clock step (ms)",
                "words lost / doubled",
                "outcome",
            ],
            kill_rows,
        ),
        "",
        f"WER of the killed session {kill_wer:.2f} % (baseline {base_wer:.2f} %); words lost / doubled at the kills: "
        f"{sum(len(w.lost) for w in kill_words)} / {sum(len(w.doubled) for w in kill_words)}.",
        "",
        "Swap events of all sessions by (event, trigger), what `katopotato_swaps_total{event,trigger}` counts: "
        + ", ".join(f"{k[0]}/{k[1]} {n}" for k, n in sorted(event_counts.items()))
        + ".",
    ]
    return "\n".join(out)


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--paragraphs", type=int, default=6, help="corpus paragraphs in the programme (6: about 2 min)")
    ap.add_argument("--interval", type=float, default=15.0, help="seconds of media between API swaps")
    ap.add_argument("--margin", type=float, default=12.0, help="no HLS swap requested this close to the end (s)")
    ap.add_argument("--page-margin", type=float, default=20.0, help="no page swap requested this close to the end")
    ap.add_argument("--kills", type=int, default=3, help="kill -9 of the capture's FFmpeg, this many times")
    ap.add_argument("--kill-every", type=float, default=30.0, help="seconds of media between kills (first at 20 s)")
    ap.add_argument("--window", type=int, default=20, help="live window of the killed session's stream (segments)")
    ap.add_argument("--quick", action="store_true", help="2 paragraphs (about 40 s), swaps every 10 s, 1 kill")
    ap.add_argument("--out", type=Path, help="also write the Markdown here (e.g. benchmarks/results/hotpotato.md)")
    ap.add_argument("--json", type=Path, help="also write each session's raw results here (text, swaps, segments)")
    args = ap.parse_args()
    if args.quick:
        args.paragraphs, args.interval, args.kills = 2, 10.0, 1
    without_timestamps_for_some_sessions()
    load0 = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-hotpotato-") as tmp_dir:
        sessions, programme, _ = await run(args, Path(tmp_dir))
        text = report(args, sessions, programme, started, load0)
        if args.json:
            args.json.write_text(json.dumps([raw(s) for s in sessions], indent=1), encoding="utf-8")
    print(text, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    log(f"done in {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    asyncio.run(main())
