"""CouchPotato's capture and transcription core.

From a media source to an ordered transcript: source resolution and the URL guard, FFmpeg decoding
to 16 kHz PCM, VAD-aware segmentation, ASR engines, corrections and the resequencer.
"""

from __future__ import annotations

from .asr import AsrEngine, AsrOptions, FasterWhisperEngine
from .capture import Capture, CaptureOptions, capture_events
from .corrections import Corrections
from .errors import CouchPotatoError, SourceError
from .pipeline import Pipeline, PipelineOptions
from .records import EndEvent, Event, GapEvent, Segment, SegmentResult, SessionEvent, TranscriptEvent, Word
from .resequencer import Resequencer, ResequencerState
from .segmenter import Segmenter, SegmenterOptions
from .urlguard import UrlGuard

__version__ = "0.1.0"

__all__ = [
    "AsrEngine",
    "AsrOptions",
    "Capture",
    "CaptureOptions",
    "Corrections",
    "CouchPotatoError",
    "EndEvent",
    "Event",
    "FasterWhisperEngine",
    "GapEvent",
    "Pipeline",
    "PipelineOptions",
    "Resequencer",
    "ResequencerState",
    "Segment",
    "SegmentResult",
    "Segmenter",
    "SegmenterOptions",
    "SessionEvent",
    "SourceError",
    "TranscriptEvent",
    "UrlGuard",
    "Word",
    "__version__",
    "capture_events",
]
