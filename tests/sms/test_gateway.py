"""The real twilio client against the local stand-in: sends, retries on 429/5xx, final refusals,
number pools and rate limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from plugins.sms.errors import GatewayError
from plugins.sms.gateway import RateLimiter, TwilioGateway, backoff_s, retryable
from plugins.sms.settings import SmsSettings

from .standin import SERVICE_SID, Standin, run_standin, settings_for


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    async with run_standin() as s:
        yield s


@pytest.fixture
async def gateway(standin: Standin) -> AsyncIterator[TwilioGateway]:
    gw = TwilioGateway(SmsSettings(**settings_for(standin)), base_backoff_s=0.01)
    yield gw
    await gw.close()


async def test_send_through_the_real_client(standin: Standin, gateway: TwilioGateway) -> None:
    sent = await gateway.send("+14155552671", "Hi Ana", validity_period_s=3600, status_callback="http://x/cb")
    assert sent.sid.startswith("SM") and sent.status == "accepted"
    [req] = standin.received
    assert req["To"] == "+14155552671" and req["Body"] == "Hi Ana" and req["ValidityPeriod"] == "3600"
    assert req["MessagingServiceSid"] == SERVICE_SID and req["StatusCallback"] == "http://x/cb"


async def test_429_and_5xx_are_retried_with_backoff(standin: Standin, gateway: TwilioGateway) -> None:
    standin.fail_next = [429, 500, 503]
    sent = await gateway.send("+14155552671", "Hi", validity_period_s=60)
    assert sent.sid.startswith("SM") and standin.requests == 4 and len(standin.received) == 1


async def test_retries_give_up_after_max_tries(standin: Standin, gateway: TwilioGateway) -> None:
    standin.fail_next = [500] * 10
    with pytest.raises(GatewayError) as e:
        await gateway.send("+14155552671", "Hi", validity_period_s=60)
    assert e.value.http_status == 500 and standin.requests == gateway.settings.max_send_tries


async def test_unsubscribed_is_final_at_once(standin: Standin, gateway: TwilioGateway) -> None:
    standin.unsubscribed.add("+14155552671")
    with pytest.raises(GatewayError) as e:
        await gateway.send("+14155552671", "Hi", validity_period_s=60)
    assert e.value.twilio_code == 21610 and standin.requests == 1


async def test_wrong_credentials_are_refused(standin: Standin) -> None:
    gw = TwilioGateway(SmsSettings(**settings_for(standin, auth_token="wrong")), base_backoff_s=0.01)
    try:
        with pytest.raises(GatewayError) as e:
            await gw.send("+14155552671", "Hi", validity_period_s=60)
        assert e.value.http_status == 401
    finally:
        await gw.close()


async def test_number_pool_keeps_a_contact_on_one_number_and_limits_each(standin: Standin) -> None:
    pool = "+15005550006,+15005550007"
    s = SmsSettings(**settings_for(standin, messaging_service_sid="", from_numbers=pool, per_number_rate_per_s=20))
    gw = TwilioGateway(s)
    try:
        t0 = time.monotonic()
        for _ in range(5):
            await gw.send("+14155552671", "Hi", validity_period_s=60)
        elapsed = time.monotonic() - t0
    finally:
        await gw.close()
    assert {r["From"] for r in standin.received} == {gw.from_number("+14155552671")}
    assert elapsed >= 4 / 20 * 0.95  # five sends from one number at 20/s: four gaps of 50 ms


async def test_rate_limiter_spaces_acquisitions() -> None:
    limiter = RateLimiter(50)
    t0 = time.monotonic()
    for _ in range(6):
        await limiter.acquire()
    assert time.monotonic() - t0 >= 5 / 50 * 0.95


def test_backoff_grows_and_is_capped() -> None:
    assert all(0.1 <= backoff_s(1, 0.2) <= 0.2 for _ in range(50))
    assert all(0.4 <= backoff_s(3, 0.2) <= 0.8 for _ in range(50))
    assert all(backoff_s(30, 0.2, 5.0) <= 5.0 for _ in range(50))
    assert retryable(429) and retryable(503) and not retryable(400) and not retryable(404)


async def test_unconfigured_gateway_says_what_to_set() -> None:
    with pytest.raises(GatewayError, match="ACCOUNT_SID"):
        await TwilioGateway(SmsSettings()).send("+14155552671", "Hi", validity_period_s=60)


async def test_a_request_that_may_have_reached_twilio_is_not_repeated(standin: Standin) -> None:
    standin.delay_s = 0.8
    gw = TwilioGateway(SmsSettings(**settings_for(standin)), base_backoff_s=0.01)
    gw._ensure()
    assert gw._http is not None
    gw._http.timeout = 0.2
    try:
        with pytest.raises(GatewayError) as e:
            await gw.send("+14155552671", "Hi", validity_period_s=60)
    finally:
        await gw.close()
    assert e.value.maybe_sent and standin.requests == 1


async def test_no_connection_is_retried() -> None:
    s = SmsSettings(account_sid="AC1", auth_token="t", messaging_service_sid="MG1", api_url="http://127.0.0.1:9")
    gw = TwilioGateway(s, base_backoff_s=0.01)
    try:
        with pytest.raises(GatewayError, match="unreachable after 4 tries") as e:
            await gw.send("+14155552671", "Hi", validity_period_s=60)
    finally:
        await gw.close()
    assert not e.value.maybe_sent and gw.requests == 4
