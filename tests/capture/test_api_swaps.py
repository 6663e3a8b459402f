"""``katopotato.api.swaps``: the API's swap helpers on the capture state a session leaves."""

from __future__ import annotations

import pytest

from hotpotato.errors import SwapRefused
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore

from .conftest import SID


async def test_a_swap_is_refused_until_the_session_captures_and_after_it_ended(broker: MemoryBroker) -> None:
    with pytest.raises(SwapRefused, match="not being captured"):
        await request_swap(broker, SID)
    store = CaptureStore(broker, SID)
    await store.load()
    await store.save()
    with pytest.raises(SwapRefused, match="still starting"):
        await request_swap(broker, SID)
    store.state.announced = True
    await store.save()
    swap = await request_swap(broker, SID, "test: swap now", trigger="api")
    assert swap.phase == "requested" and swap.trigger == "api"
    with pytest.raises(SwapRefused):
        await request_swap(broker, SID)  # one at a time
    assert (await swap_status(broker, SID))["swap"]["id"] == swap.id
    assert await swap_events(broker, SID) == []  # events start when the capture instance accepts it
    store.state.source_done = True
    await store.save()
    with pytest.raises(SwapRefused, match="ended"):
        await request_swap(broker, SID)
