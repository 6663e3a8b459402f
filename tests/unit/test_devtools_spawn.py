"""Chromium's DevTools pipe is handed over by a shell shim, not by Python code between fork and exec:
the child gets our ends on fds 3 and 4. (A ``preexec_fn`` made CPython fork() rather than vfork();
a service's swap then hung for good inside that fork, in OpenBLAS's atfork handler, while an ASR
decode ran in another thread. The hang was seen once, in the browser suite, and not reproduced
on purpose: this test checks the shim, the fix's one moving part.)"""

from __future__ import annotations

import asyncio
import sys

import pytest

from couchpotato.browser.devtools import DevToolsPipe
from couchpotato.browser.process import spawn

pytestmark = pytest.mark.timeout(60)

# Stands in for Chromium: answers each line read on fd 3 on fd 4, as --remote-debugging-pipe does.
ECHO = (
    "import os\n"
    "r, w = os.fdopen(3, 'rb', buffering=0), os.fdopen(4, 'wb', buffering=0)\n"
    "line = b''\n"
    "while not line.endswith(b'\\0'):\n"
    "    line += r.read(1)\n"
    "w.write(b'echo:' + line)\n"
)


async def test_the_shim_puts_our_ends_on_3_and_4() -> None:
    pipe = DevToolsPipe()
    argv, fds = pipe.spawn_args([sys.executable, "-c", ECHO])
    assert min(fds) >= 10
    proc = await spawn(argv, {}, stderr=asyncio.subprocess.PIPE, pass_fds=fds)
    try:
        await pipe.open()
        assert pipe._writer is not None
        pipe._writer.write(b"hello\0")
        assert await asyncio.wait_for(proc.wait(), 20) == 0, (await proc.stderr.read()).decode()  # type: ignore[union-attr]
    finally:
        await pipe.close()
