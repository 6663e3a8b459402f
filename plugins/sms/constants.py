"""Tunables of the SMS plugin, units in the names."""

from __future__ import annotations

DEFAULT_START_HOUR = 9  # texting hours in the contact's own time zone: [start, end)
DEFAULT_END_HOUR = 21
MAX_VALIDITY_PERIOD_S = 36_000  # Twilio's ValidityPeriod: 1 … 36 000 s (10 h)
MIN_VALIDITY_PERIOD_S = 1
DEFAULT_BATCH_SIZE = 50  # contacts handed to a texter per request for more
DEFAULT_REGION = "US"  # numbers without a country code are read as US numbers
MAX_SEND_TRIES = 4  # one try and three retries on 429/5xx
RETRY_BASE_S = 0.2  # backoff: base · 2^(try-1), plus jitter, capped
RETRY_MAX_S = 5.0
PER_NUMBER_RATE_PER_S = 1.0  # a US long code sends about one segment a second
PER_ACCOUNT_RATE_PER_S = 100.0
TWILIO_API_URL = "https://api.twilio.com"
ERROR_UNSUBSCRIBED = 21610  # Twilio: "Attempt to send to unsubscribed recipient" (the carrier handled STOP)
STATUS_PATH = "twilio/status"
INBOUND_PATH = "twilio/inbound"
