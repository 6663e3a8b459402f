"""Tunables of the capture and transcription core, with their units in their names."""

from __future__ import annotations

# Audio as every stage after FFmpeg sees it: 16 kHz mono, signed 16-bit little-endian on the pipe.
SAMPLE_RATE_HZ = 16_000
PCM_BYTES_PER_SAMPLE = 2
PCM_READ_SAMPLES = 1_600  # one read from FFmpeg's pipe: 100 ms

# Silero VAD (the ONNX model shipped inside faster-whisper) scores 32 ms windows.
VAD_WINDOW_SAMPLES = 512
VAD_CONTEXT_SAMPLES = 64
VAD_SPEECH_THRESHOLD = 0.5  # a window at or above this is speech
VAD_SILENCE_THRESHOLD = 0.35  # a window below this is silence (hysteresis between the two)

# Segmentation (see segmenter.py for the policy). Chosen from measurements on the tuning split of
# benchmarks/evalset (docs/accuracy.md): a segment of at most 4 s decoded with up to 8 s of the
# speech before it scored as well as whole-file decoding (11.3 % WER, whole file 11.4 %), like
# 4–9 s segments with 4 s of lead-in, and its words are final about twice as soon. With 2 s of
# lead-in the same short segments scored 13.7 %: what the decoder hears before a segment matters more
# than how long the segment is.
MIN_SEGMENT_S = 2.0  # never cut before a segment is this long
TARGET_SEGMENT_S = 4.0  # before this, cut only in a long pause; after it, any word gap will do
MAX_SEGMENT_S = 4.0  # at this length, cut at the quietest point inside speech, with an overlap
LONG_PAUSE_MS = 300
SHORT_PAUSE_MS = 120
OVERLAP_MS = 4000  # audio shared by two segments when a cut falls inside speech (2 s each side)
CONTEXT_MS = 8000  # speech before its owned span every segment is decoded with, as a lead-in
MAX_CONTEXT_MS = 10_000  # a longer lead-in bought nothing measurable and costs encoder time
DRAFT_CONTEXT_MS = 3000  # lead-in of an interim decode: enough for the words before a cut, at a third of a draft's cost
# The lead-in stops at a longer pause: a break (stopping at 2 s pauses cost 0.5 points on the
# tuning split, whose pauses are at most about 2 s: hearing the voice before a pause helps).
LEAD_IN_MAX_PAUSE_MS = 4000
SPEECH_PAD_MS = 200  # silence kept around speech when a segment's audio is trimmed

# ASR
DEFAULT_MODEL = "tiny.en"
DEFAULT_LANGUAGE = "en"
MIN_ENCODER_WINDOW_S = 10.0  # Whisper's encoder sees max(this, segment + 2 s), not a padded 30 s
ENCODER_TAIL_S = 2.0
DEFAULT_ASR_WORKERS = 2
# Decoding is deterministic: greedy at temperature 0, then a wider beam, and only then Whisper's
# temperature sampling (see asr/whisper.py). A decode is doubtful past Whisper's own thresholds.
FALLBACK_BEAM_SIZE = 5
SAMPLING_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
DOUBTFUL_LOG_PROB = -1.0  # average log-probability of a decoded span below this: decode it again
DOUBTFUL_COMPRESSION_RATIO = 2.4  # gzip ratio of its text above this (repetition): decode it again
# A decode's token budget per second of audio: text (~5 tokens/s in fast speech), timestamps, and
# what a window decodes in its silent tail before dropping it.
MAX_TOKENS_PER_S = 16.0
MIN_TOKEN_BUDGET = 32  # and at least this many, for a short segment
MAX_TOKEN_BUDGET = 224  # Whisper's 448-token context minus the longest prompt faster-whisper keeps (223 + 1)
# Coverage: a decode must put words on all the speech of its audio. Where it did not (a word stretched
# over speech the decoder skipped, speech after the last word or between two words, as when Whisper's
# no-speech rule rejects a window the VAD called speech), that span is decoded again.
LONG_WORD_S = 1.0  # a word this long that is mostly speech covers words the decoder skipped
UNHEARD_SPEECH_S = 0.4  # this much speech (VAD) with no word on it is decoded again
REDECODE_CONTEXT_S = 1.0  # audio before a span decoded again, as a lead-in (with the text so far as prompt)
REDECODE_PROMPT_CHARS = 200  # the end of the text so far given as the prompt of a span decoded again
ASR_RETRIES = 1  # a segment whose transcription fails is retried this many times, then gapped

# Interim text (partials.py): the open segment is drafted at most this often, once it has grown this much
PARTIAL_INTERVAL_S = 0.75
MIN_DRAFT_GROWTH_S = 0.3

# Resequencer
GAP_TIMEOUT_S = 120.0  # a missing seq that holds later results back this long becomes a gap
BOUNDARY_DUPLICATE_S = 0.8  # words heard again after a cut end this close to where they were committed
SKIPPED_SLACK_S = 0.1  # timing slack when words one decode skipped are taken from the other
TAIL_WORDS = 8  # committed words the resequencer remembers to align the next segment's words at the cut
LEAD_REPEAT_S = 2.0  # a word this close to a committed word spelt alike repeats it
PULLED_WORD_S = 0.6  # a segment's first word this long, ending in its owned span, was pulled to the start
MIN_PIECE_LETTERS = 4  # a lead-in word this long that ends or starts a committed word is a piece of it
BOUNDARY_SIMILARITY = 0.75  # spelling similarity (difflib ratio) from which two words are "the same"

# Capture robustness
STALL_TIMEOUT_S = 20.0  # no PCM for this long: the source has stalled
LIVE_RECONNECT_ATTEMPTS = 3
RECONNECT_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
PROBE_TIMEOUT_S = 15.0
PROBE_READ_BYTES = 8_192
FFMPEG_RW_TIMEOUT_US = 15_000_000
