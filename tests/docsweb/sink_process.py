"""A gdoc sink as a process of its own, for the test that kills it between a write and the cursor save.

    python -m tests.docsweb.sink_process EVENTS.jsonl STORE.db CREDENTIALS.json DOCS_URL DRIVE_URL DOC_ID

Delivers the events of a JSON-lines transcript (event ids: line numbers) to an existing document,
two events per write, its cursors in a SQLite file; exits 0 once the ``end`` event is delivered.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from couchpotato.records import Event, event_from_dict
from docsweb import DocsWebSettings, GDocSpec, SinkManager, SqliteCursorStore

SESSION_ID = "killed"


async def main(lines: list[dict[str, object]], store_path: Path, creds: Path, docs: str, drive: str, doc: str) -> int:

    async def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
        start = int(after or 0)
        for n, d in enumerate(lines[start:], start + 1):
            yield str(n), event_from_dict(d)

    settings = DocsWebSettings(google_credentials=creds, docs_endpoint=docs, drive_endpoint=drive)
    spec = GDocSpec.model_validate(
        {"type": "gdoc", "id": "doc", "document_id": doc, "batch_interval_s": 1.0, "batch_max_events": 2}
    )
    async with SqliteCursorStore(store_path) as store, SinkManager(SESSION_ID, source, store, settings=settings) as m:
        await m.add(spec)
        (status,) = await m.wait()
    print(json.dumps(status.to_dict()), flush=True)
    return 0 if status.state.health == "done" else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    events = [json.loads(line) for line in Path(a[0]).read_text().splitlines() if line.strip()]
    sys.exit(asyncio.run(main(events, Path(a[1]), Path(a[2]), a[3], a[4], a[5])))
