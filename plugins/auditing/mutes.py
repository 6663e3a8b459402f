"""Mutes made through the API (the console's Mute button): one blob per rule in the host's blob store
(``auditing/mutes/<id>.json``), each a mute-list rule (``Mute``) with who made it and when. Every run
applies them together with the configured mute list file; deleting the blob unmutes (from the next
run on, like editing the file)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from katopotato.plugin import BlobStore

from .constants import MUTE_BLOB_PREFIX
from .errors import MutelistError
from .mutelist import Mute


@dataclass(frozen=True)
class StoredMute:
    """A mute rule made through the API.

    Attributes:
        id: its id (the blob's name).
        mute: the rule (``who`` is the person who made it).
        created_at: when (Unix seconds).
        who_id: the principal's id (its token, sign-in or ``oidc:<subject>``).
    """

    id: str
    mute: Mute
    created_at: float
    who_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "who_id": self.who_id,
            **self.mute.model_dump(mode="json"),
        }


def mute_key(mute_id: str) -> str:
    return f"{MUTE_BLOB_PREFIX}{mute_id}.json"


def valid_id(mute_id: str) -> bool:
    return 0 < len(mute_id) <= 64 and mute_id.isalnum()


async def save_mute(blobs: BlobStore, mute: Mute, who_id: str) -> StoredMute:
    stored = StoredMute(secrets.token_hex(8), mute, time.time(), who_id)
    await blobs.put(mute_key(stored.id), json.dumps(stored.to_dict()).encode())
    return stored


async def load_mutes(blobs: BlobStore) -> list[StoredMute]:
    """Every stored mute, oldest first; an unreadable one is a MutelistError (a run must not ignore it)."""
    out = []
    for info in await blobs.list(MUTE_BLOB_PREFIX):
        try:
            doc = json.loads(await blobs.get(info.key))
            meta = {k: doc.pop(k) for k in ("id", "created_at", "who_id")}
            out.append(
                StoredMute(str(meta["id"]), Mute.model_validate(doc), float(meta["created_at"]), str(meta["who_id"]))
            )
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as e:
            raise MutelistError(f"the stored mute {info.key} is unreadable: {e}") from e
    return sorted(out, key=lambda m: (m.created_at, m.id))


async def delete_mute(blobs: BlobStore, mute_id: str) -> bool:
    """Remove a stored mute; False if there was none with that id."""
    if not valid_id(mute_id):
        return False
    return await blobs.delete(mute_key(mute_id))


__all__ = ["StoredMute", "delete_mute", "load_mutes", "mute_key", "save_mute", "valid_id"]
