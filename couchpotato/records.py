"""Records that cross process boundaries, and their JSON form.

Times are seconds of media time from the start of the session, except fields ending in ``_at``
(Unix seconds, wall clock). Every record is a frozen dataclass; ``to_dict``/``from_dict`` are the
one serializer, so the wire format lives here and nowhere else.

The transcript's wire format is the stream of events a user reads: one JSON object per line of
``couchpotato transcribe --format jsonl`` and per ``data:`` of the service's Server-Sent Events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .errors import SerializationError

WIRE_VERSION = 1
_WORD_KEY = re.compile(r"[^\w']+")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its media-time span and the model's confidence."""

    start: float
    end: float
    word: str
    probability: float

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    @property
    def key(self) -> str:
        """The word as two decodes of the same audio are compared: lower case, no punctuation."""
        return _WORD_KEY.sub("", self.word.lower())

    def shifted(self, offset: float) -> Word:
        """The same word ``offset`` seconds later (segment time to media time)."""
        return Word(self.start + offset, self.end + offset, self.word, self.probability)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "word": self.word,
            "probability": round(self.probability, 4),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(float(d["start"]), float(d["end"]), str(d["word"]), float(d["probability"]))


@dataclass(frozen=True, slots=True)
class Segment:
    """A span of captured audio, cut by the segmenter and transcribed independently.

    Attributes:
        session_id: the session the audio belongs to.
        seq: gapless position in the session, from 0.
        start, end: the span of the audio handed to ASR.
        keep_start, keep_end: the span this segment owns. Where a cut fell inside speech the
            neighbours' audio overlaps, and a word belongs to the segment whose owned span holds
            the word's centre; elsewhere the owned span equals the audio span.
        epoch: generation of the capture instance that cut it (HotPotato swaps bump it).
        audio: key of the audio blob, where the audio is stored out of process ("" in-process).
    """

    session_id: str
    seq: int
    start: float
    end: float
    keep_start: float
    keep_end: float
    epoch: int = 0
    audio: str = ""

    @property
    def overlap(self) -> float:
        """Seconds of audio shared with the previous segment."""
        return round(self.keep_start - self.start, 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "session_id": self.session_id,
            "seq": self.seq,
            "start": self.start,
            "end": self.end,
            "keep_start": self.keep_start,
            "keep_end": self.keep_end,
            "epoch": self.epoch,
            "audio": self.audio,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return _build(
            cls,
            d,
            lambda: cls(
                str(d["session_id"]),
                int(d["seq"]),
                float(d["start"]),
                float(d["end"]),
                float(d["keep_start"]),
                float(d["keep_end"]),
                int(d.get("epoch", 0)),
                str(d.get("audio", "")),
            ),
        )


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """What an ASR worker returns for one segment: words in media time, whatever it recognised."""

    segment: Segment
    words: tuple[Word, ...]
    engine: str

    @property
    def seq(self) -> int:
        return self.segment.seq

    @property
    def text(self) -> str:
        return join_words(self.words)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "segment": self.segment.to_dict(),
            "words": [w.to_dict() for w in self.words],
            "text": self.text,
            "engine": self.engine,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentResult:
        return _build(
            cls,
            d,
            lambda: cls(
                Segment.from_dict(d["segment"]),
                tuple(Word.from_dict(w) for w in d["words"]),
                str(d["engine"]),
            ),
        )


@dataclass(frozen=True, slots=True)
class SegmentFailure:
    """A segment that failed for good: the resequencer turns it into a gap marker."""

    segment: Segment
    reason: str

    @property
    def seq(self) -> int:
        return self.segment.seq

    def to_dict(self) -> dict[str, Any]:
        return {"v": WIRE_VERSION, "segment": self.segment.to_dict(), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentFailure:
        return _build(cls, d, lambda: cls(Segment.from_dict(d["segment"]), str(d["reason"])))


# --- transcript events: what users receive -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """First event of a transcript: when media t=0 happened, and what is being captured."""

    media_epoch: float
    session_id: str = ""
    source: str = ""
    source_kind: str = ""
    reason: str = ""
    type: Literal["session"] = "session"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "media_epoch": round(self.media_epoch, 3)}
        for k in ("session_id", "source", "source_kind", "reason"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        return d


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """A committed segment: emitted once, in seq order."""

    session_id: str
    seq: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    emitted_at: float
    type: Literal["segment"] = "segment"

    def to_dict(self) -> dict[str, Any]:
        return _words_event_dict(self)


def _words_event_dict(e: TranscriptEvent | PartialEvent) -> dict[str, Any]:
    """The JSON of an event that carries words (a committed segment, or a partial)."""
    return {
        "type": e.type,
        "seq": e.seq,
        "start": round(e.start, 3),
        "end": round(e.end, 3),
        "text": e.text,
        "words": [w.to_dict() for w in e.words],
        "emitted_at": round(e.emitted_at, 3),
    }


def _words_event_fields(d: dict[str, Any]) -> tuple[str, int, float, float, str, tuple[Word, ...], float]:
    """session_id, seq, start, end, text, words, emitted_at of such an event's JSON."""
    return (
        str(d.get("session_id", "")),
        int(d["seq"]),
        float(d["start"]),
        float(d["end"]),
        str(d["text"]),
        tuple(Word.from_dict(w) for w in d["words"]),
        float(d["emitted_at"]),
    )


@dataclass(frozen=True, slots=True)
class PartialEvent:
    """Provisional words of a segment still being heard, decoded from its audio so far.

    ``seq`` is the segment they will be committed under; the ``segment`` event of that seq replaces
    every partial of it for good. ``revision`` grows with each partial of a seq; the first
    ``stable`` words are those two successive decodes agreed on (they rarely change). Partials are
    live-only: never in a durable transcript, a sink, search, or an export.
    """

    session_id: str
    seq: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    emitted_at: float
    revision: int
    stable: int = 0
    type: Literal["partial"] = "partial"

    def to_dict(self) -> dict[str, Any]:
        return {**_words_event_dict(self), "revision": self.revision, "stable": self.stable}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PartialEvent:
        try:
            return cls(*_words_event_fields(d), int(d["revision"]), int(d.get("stable", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"malformed 'partial' event: {e}") from e


@dataclass(frozen=True, slots=True)
class GapEvent:
    """A seq whose transcription failed for good: marked, never silently skipped."""

    session_id: str
    seq: int
    start: float
    end: float
    reason: str
    emitted_at: float = 0.0
    type: Literal["gap"] = "gap"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "seq": self.seq,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class EndEvent:
    """Last event of a transcript."""

    reason: str = "end_of_source"
    error: str = ""
    segments: int = 0
    type: Literal["end"] = "end"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "reason": self.reason, "segments": self.segments}
        if self.error:
            d["error"] = self.error
        return d


Event = SessionEvent | TranscriptEvent | GapEvent | EndEvent
LiveEvent = Event | PartialEvent  # what a live view shows; durable outputs take ``Event`` only
CommitEvent = TranscriptEvent | GapEvent


def event_from_dict(d: dict[str, Any]) -> Event:
    """Decode one transcript event (a line of ``--format jsonl``)."""
    kind = d.get("type")
    try:
        if kind == "session":
            return SessionEvent(
                float(d["media_epoch"]),
                str(d.get("session_id", "")),
                str(d.get("source", "")),
                str(d.get("source_kind", "")),
                str(d.get("reason", "")),
            )
        if kind == "segment":
            return TranscriptEvent(*_words_event_fields(d))
        if kind == "gap":
            return GapEvent(
                str(d.get("session_id", "")),
                int(d["seq"]),
                float(d["start"]),
                float(d["end"]),
                str(d["reason"]),
            )
        if kind == "end":
            return EndEvent(str(d.get("reason", "")), str(d.get("error", "")), int(d.get("segments", 0)))
    except (KeyError, TypeError, ValueError) as e:
        raise SerializationError(f"malformed {kind!r} event: {e}") from e
    raise SerializationError(f"unknown event type {kind!r}")


def dumps(record: Any) -> str:
    """One compact JSON line for a record with ``to_dict``."""
    try:
        return json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, AttributeError) as e:
        raise SerializationError(f"cannot encode {type(record).__name__}: {e}") from e


def join_words(words: tuple[Word, ...] | list[Word]) -> str:
    """Text of a word sequence. Whisper's words carry their own leading space."""
    return "".join(w.word for w in words).strip()


def _build(cls: type, d: Any, make: Callable[[], T]) -> T:
    try:
        if not isinstance(d, dict):
            raise TypeError("not an object")
        v = d.get("v", WIRE_VERSION)
        if v != WIRE_VERSION:
            raise ValueError(f"wire version {v}, expected {WIRE_VERSION}")
        return make()
    except (KeyError, TypeError, ValueError) as e:
        raise SerializationError(f"cannot decode {cls.__name__}: {e}") from e


__all__ = [
    "WIRE_VERSION",
    "CommitEvent",
    "EndEvent",
    "Event",
    "GapEvent",
    "LiveEvent",
    "PartialEvent",
    "Segment",
    "SegmentFailure",
    "SegmentResult",
    "SessionEvent",
    "TranscriptEvent",
    "Word",
    "dumps",
    "event_from_dict",
    "join_words",
]
