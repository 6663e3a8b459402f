"""``couchpotato transcribe`` on real media: HTTP files, live HLS, RTMP, RTSP, stdin, real time."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from couchpotato.testing import Programme, hls_live, rtsp_available, rtsp_live, serve_directory, wer
from couchpotato.testing.audit import assert_no_word_lost
from tests.conftest import requires_media_tools

pytestmark = [pytest.mark.e2e, requires_media_tools]

# tiny.en on this corpus: about 6% for whole-file transcription (benchmarks/README.md). The bound
# leaves room for voice-to-voice variance on a shorter excerpt, and still fails on a broken order,
# lost or doubled segments (each of those costs far more than 6 points).
WER_BOUND = 0.12


def check_transcript(events: list[dict[str, Any]]) -> None:
    assert events[0]["type"] == "session" and isinstance(events[0]["media_epoch"], float)
    assert events[-1]["type"] == "end"
    commits = [e for e in events if e["type"] in ("segment", "gap")]
    assert [e["seq"] for e in commits] == list(range(len(commits))), "gapless seqs, in order, once each"
    words = [w for e in commits if e["type"] == "segment" for w in e["words"]]
    assert words, "some words were recognised"
    for a, b in itertools.pairwise(words):
        assert a["start"] <= b["start"] + 0.05, "word times run forward across segments"
    for e in commits:
        if e["type"] == "segment":
            assert e["emitted_at"] >= events[0]["media_epoch"]
            assert set(e) >= {"seq", "start", "end", "text", "words", "emitted_at"}


def test_file_over_http_in_jsonl(cli: Any, media_url: str, programme: Programme) -> None:
    run = cli("transcribe", f"{media_url}/programme/programme.wav", "--format", "jsonl")
    assert run.returncode == 0, run.stderr
    events = run.events()
    check_transcript(events)
    assert events[0]["source_kind"] == "http"
    assert wer(programme.text, run.text()) <= WER_BOUND
    assert_no_word_lost(programme.text, events)
    assert events[-1]["segments"] == len([e for e in events if e["type"] in ("segment", "gap")])


def test_live_hls_is_read_as_it_arrives(cli: Any, programme: Programme, tmp_path: Path) -> None:
    # about 75 s of programme, played live at 1x by ffmpeg -re; the CLI follows the playlist
    # until #EXT-X-ENDLIST appears, then exits 0.
    with hls_live(programme.path, tmp_path / "hls") as playlist, serve_directory(playlist.parent) as url:
        started = time.monotonic()
        run = cli("transcribe", f"{url}/{playlist.name}", "--format", "jsonl", timeout=200)
        elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    events = run.events()
    check_transcript(events)
    assert events[0]["source_kind"] == "hls" and "live" in events[0]["reason"]
    assert elapsed > programme.duration_s * 0.8, "a live stream cannot be read faster than it is made"
    assert wer(programme.text, run.text()) <= WER_BOUND


def test_rtmp_stream(cli: Any, short_speech: tuple[Path, str], unused_tcp_port: int) -> None:
    wav, text = short_speech
    url = f"rtmp://127.0.0.1:{unused_tcp_port}/live/test"
    # ffmpeg as a one-shot RTMP server: it waits for our client, then streams at 1x.
    server = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-re", "-i", str(wav), "-c:a", "aac", "-f", "flv", "-listen", "1", url],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        run = cli("transcribe", url, "--format", "jsonl", timeout=120)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert run.returncode == 0, run.stderr
    check_transcript(run.events())
    assert run.events()[0]["source_kind"] == "rtmp"
    assert wer(text, run.text()) <= WER_BOUND


@pytest.mark.skipif(rtsp_available() is not None, reason=f"no RTSP server: {rtsp_available()}")
def test_rtsp_stream(cli: Any, short_speech: tuple[Path, str]) -> None:
    wav, text = short_speech
    with rtsp_live(wav) as url:
        run = cli("transcribe", url, "--format", "jsonl", "--duration", "30", timeout=120)
    assert run.returncode == 0, run.stderr
    check_transcript(run.events())
    assert run.events()[0]["source_kind"] == "rtsp"
    assert wer(text, run.text()) <= WER_BOUND


def test_stdin(cli: Any, short_speech: tuple[Path, str]) -> None:
    wav, text = short_speech
    run = cli("transcribe", "-", "--format", "jsonl", stdin=wav.read_bytes())
    assert run.returncode == 0, run.stderr
    check_transcript(run.events())
    assert wer(text, run.text()) <= WER_BOUND


def test_realtime_and_duration(cli: Any, programme: Programme) -> None:
    started = time.monotonic()
    run = cli("transcribe", str(programme.path), "--realtime", "--duration", "6", "--format", "jsonl")
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    events = run.events()
    check_transcript(events)
    assert elapsed >= 5.5, "--realtime reads at 1x"
    assert max(e["end"] for e in events if e["type"] == "segment") <= 6.0 + 0.05, "--duration bounds media time"
    # words are emitted soon after they are spoken
    epoch = events[0]["media_epoch"]
    for e in events:
        if e["type"] == "segment" and e["words"]:
            assert e["emitted_at"] - (epoch + e["words"][-1]["end"]) < 10


def test_subtitle_formats(cli: Any, short_speech: tuple[Path, str]) -> None:
    wav, _ = short_speech
    srt = cli("transcribe", str(wav), "--format", "srt")
    assert srt.returncode == 0 and srt.stdout.startswith("1\n00:00:")
    assert " --> " in srt.stdout and "," in srt.stdout.split("\n")[1]
    vtt = cli("transcribe", str(wav), "--format", "vtt")
    assert vtt.returncode == 0 and vtt.stdout.startswith("WEBVTT\n\n00:00:")
    text = cli("transcribe", str(wav))
    assert text.returncode == 0 and "library" in text.stdout.lower()
    assert "session" in text.stderr, "the session line goes to stderr, keeping stdout clean"


def test_vocabulary_and_corrections(cli: Any, tmp_path: Path) -> None:
    from couchpotato.testing import synthesize

    text = "Senator Klobuchar and Mayor Buttigieg spoke at the town hall on Monday."
    wav = synthesize(text, tmp_path / "names.wav")
    names = ("klobuchar", "buttigieg")
    plain = cli("transcribe", str(wav), "--format", "jsonl")
    assert plain.returncode == 0, plain.stderr
    biased = cli("transcribe", str(wav), "--format", "jsonl", "--vocabulary", "Klobuchar,Buttigieg")
    assert biased.returncode == 0, biased.stderr
    heard_plain = sum(n in plain.text().lower() for n in names)
    heard_biased = sum(n in biased.text().lower() for n in names)
    assert heard_biased >= 1 and heard_biased >= heard_plain, (plain.text(), biased.text())

    # Whatever tiny.en makes of a name, a corrections file written from what it heard fixes it,
    # in the text and in the words.
    misheard = plain.text().split()[1].strip(",.")
    rules = tmp_path / "fix.toml"
    rules.write_text(f'[replace]\n"\\\\b{misheard}\\\\b" = "KLOBUCHAR"\n')
    fixed = cli("transcribe", str(wav), "--format", "jsonl", "--corrections", str(rules))
    assert fixed.returncode == 0, fixed.stderr
    assert "KLOBUCHAR" in fixed.text()
    seg = next(e for e in fixed.events() if e["type"] == "segment" and "KLOBUCHAR" in e["text"])
    assert any(w["word"].strip().startswith("KLOBUCHAR") for w in seg["words"]), "words are corrected too"


@pytest.mark.skipif(
    not Path("../shared/checks/contract.py").exists(), reason="no ../shared/checks/contract.py beside this checkout"
)
def test_shared_contract_checker_cli() -> None:
    p = subprocess.run(
        ["python3", "../shared/checks/contract.py", "cli"], capture_output=True, text=True, timeout=600, check=False
    )
    assert p.returncode == 0 and "FAIL" not in p.stdout, p.stdout + p.stderr


def repeated_ngrams(words: list[str], n: int = 4) -> set[tuple[str, ...]]:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return {g for g in grams if grams.count(g) > 1}


def test_a_live_hls_reconnect_transcribes_nothing_twice(tmp_path: Path) -> None:
    """FFmpeg dies mid-stream; the reconnected run starts three segments back into the live window
    (6 s here), so it replays audio already transcribed: the stream time drops it."""
    import psutil

    from couchpotato.testing import build_programme, normalise
    from tests.e2e.conftest import CLI

    prog = build_programme(tmp_path / "programme", 2)
    folder = tmp_path / "hls"
    env = {**os.environ, "COUCHPOTATO_URL_ALLOWLIST": "127.0.0.0/8"}
    with hls_live(prog.path, folder, segment_s=2.0, window=10) as playlist, serve_directory(folder) as url:
        argv = [str(CLI), "transcribe", f"{url}/{playlist.name}", "--format", "jsonl", "-v"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            time.sleep(14)
            ffmpeg = [c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "ffmpeg"]
            assert ffmpeg, "the CLI's FFmpeg is running"
            ffmpeg[0].kill()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "reconnecting" in err and "replayed after reconnecting, dropped" in err, err[-2000:]
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    check_transcript(events)
    heard = " ".join(e["text"] for e in events if e["type"] == "segment")
    doubled = repeated_ngrams(normalise(heard).split()) - repeated_ngrams(normalise(prog.text).split())
    assert not doubled, f"said once, transcribed twice: {doubled}"
    assert wer(prog.text, heard) <= WER_BOUND, heard


def test_a_page_whose_media_refuses_hotlinking_is_read_with_the_headers_yt_dlp_reports(
    cli: Any, short_speech: tuple[Path, str], tmp_path: Path
) -> None:
    """The page's <audio> is served only with a Referer from the site (as CDNs against hotlinking
    do). yt-dlp reports that Referer with the media URL; the probe and FFmpeg send it."""
    path, text = short_speech
    site = tmp_path / "site"
    site.mkdir()
    encode = ["ffmpeg", "-v", "error", "-i", str(path), "-c:a", "aac", "-movflags", "+faststart"]
    subprocess.run([*encode, str(site / "clip.m4a")], check=True)
    (site / "index.html").write_text('<!doctype html><html><body><audio controls src="clip.m4a"></audio></body></html>')
    with serve_directory(site, hotlink_guard=True) as url:
        direct = cli("transcribe", f"{url}/clip.m4a", "--format", "jsonl")
        run = cli("transcribe", f"{url}/index.html", "--mode", "direct", "--format", "jsonl")
    assert direct.returncode == 1 and "HTTP 403" in direct.stderr, "without the Referer the media is refused"
    assert len(direct.stderr.strip().splitlines()) == 1, direct.stderr
    assert run.returncode == 0, run.stderr
    events = run.events()
    check_transcript(events)
    assert events[0]["source_kind"] == "http" and "yt-dlp" in events[0]["reason"], events[0]
    assert wer(text, run.text()) <= WER_BOUND, run.text()


def test_partials_come_before_their_segment_and_never_after(cli: Any, short_speech: tuple[Path, str]) -> None:
    wav, text = short_speech
    run = cli("transcribe", str(wav), "--realtime", "--partials", "--format", "jsonl")
    assert run.returncode == 0, run.stderr
    events = run.events()
    finals = [e for e in events if e["type"] != "partial"]
    check_transcript(finals)
    assert wer(text, run.text()) <= WER_BOUND
    partials = [e for e in events if e["type"] == "partial"]
    assert partials, "interim text while segments were open"
    committed: set[int] = set()
    revisions: dict[int, int] = {}
    for e in events:
        if e["type"] == "segment":
            committed.add(e["seq"])
        elif e["type"] == "partial":
            assert e["seq"] not in committed, "a partial after its segment committed"
            assert e["revision"] > revisions.get(e["seq"], 0) and 0 <= e["stable"] <= len(e["words"])
            revisions[e["seq"]] = e["revision"]
    # a word shows up sooner than its segment commits
    epoch = events[0]["media_epoch"]
    first_partial = {e["seq"]: e["emitted_at"] for e in reversed(partials)}
    firsts = [first_partial[e["seq"]] for e in events if e["type"] == "segment" and e["seq"] in first_partial]
    finals_at = [e["emitted_at"] for e in events if e["type"] == "segment" and e["seq"] in first_partial]
    assert all(p < f for p, f in zip(firsts, finals_at, strict=True)) and epoch > 0
    # piped text holds the final text only, partials or not
    piped = cli("transcribe", str(wav), "--partials")
    assert piped.returncode == 0 and "\x1b" not in piped.stdout and piped.stdout.strip()
