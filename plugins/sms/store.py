"""The plugin's tables (SQLAlchemy Core, in the service's database) and every query it makes.

The tables are made by the plugin's Alembic branch ``sms`` (``migrations/``), which the host
applies when the service starts; a change to a table here needs a new revision there. A send costs
four statements whatever the campaign's size (``snapshot``, the claim's UPDATE + INSERT in one
transaction, ``record_sent``); a status callback one UPDATE.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from .checks import SendSnapshot
from .contacts import ContactRow
from .errors import NotFound
from .status import INTERIM, TERMINAL, MessageStatus

T = TypeVar("T")
metadata = MetaData()

campaigns = Table(
    "sms_campaigns", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("script", Text, nullable=False),
    Column("questions", JSON, nullable=False),  # [{"id", "text", "answers": [{"value", "script"}]}]
    Column("canned", JSON, nullable=False),  # [{"title", "text"}]
    Column("custom_fields", JSON, nullable=False),
    Column("start_hour", Integer, nullable=False),
    Column("end_hour", Integer, nullable=False),
    Column("due_at", Float),
    Column("active", Boolean, nullable=False, default=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)  # fmt: skip

texters = Table(
    "sms_texters", metadata,
    Column("campaign_id", Integer, ForeignKey("sms_campaigns.id"), primary_key=True),
    Column("texter_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
)  # fmt: skip

contacts = Table(
    "sms_contacts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, ForeignKey("sms_campaigns.id"), nullable=False),
    Column("cell", String(20), nullable=False),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("zip", String(12), nullable=False),
    Column("zone", String(40)),
    Column("custom", JSON, nullable=False),
    Column("texter_id", String(64)),
    Column("status", String(12), nullable=False, default="new"),  # new, texted, replied
    Column("texted_at", Float),
    Column("tags", JSON, nullable=False),
    UniqueConstraint("campaign_id", "cell", name="uq_sms_contacts_campaign_cell"),
    Index("ix_sms_contacts_assignment", "campaign_id", "texter_id", "status"),
    Index("ix_sms_contacts_cell", "cell"),
)  # fmt: skip

messages = Table(
    "sms_messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", Integer, nullable=False),
    Column("contact_id", Integer, ForeignKey("sms_contacts.id"), nullable=False),
    Column("texter_id", String(64)),
    Column("direction", String(3), nullable=False),  # out, in
    Column("body", Text, nullable=False),
    Column("sid", String(64), unique=True),
    Column("status", String(12), nullable=False),
    Column("error_code", Integer),
    Column("send_before", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_sms_messages_contact", "contact_id"),
)  # fmt: skip

opt_outs = Table(
    "sms_opt_outs", metadata,
    Column("phone", String(20), primary_key=True),
    Column("source", String(40), nullable=False),  # keyword, carrier (21610), admin
    Column("at", Float, nullable=False),
)  # fmt: skip

opt_out_log = Table(
    "sms_opt_out_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(20), nullable=False),
    Column("action", String(10), nullable=False),  # opt_out, opt_in
    Column("source", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor_id", String(200), nullable=False, default=""),  # who, by hand (PUT/DELETE opt-outs/{phone})
    Column("actor_name", String(200), nullable=False, default=""),
)  # fmt: skip

answers = Table(
    "sms_answers", metadata,
    Column("contact_id", Integer, ForeignKey("sms_contacts.id"), primary_key=True),
    Column("question", String(64), primary_key=True),
    Column("answer", Text, nullable=False),
    Column("texter_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
)  # fmt: skip

_groups: weakref.WeakKeyDictionary[Any, GroupCommit] = weakref.WeakKeyDictionary()


class GroupCommit:
    """Group commit: the small writes of concurrent requests (a send's claim and its SID, status
    callbacks) share one transaction, so many cost one fsync instead of one each. A write queued
    while a transaction is being committed goes into the next one. If a group fails, each of its
    writes is tried again alone, so one bad write fails only its own request."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.queue: list[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.queue.append((fn, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self.queue:
            group, self.queue = self.queue, []
            try:
                results = []
                async with self.db.write() as conn:
                    for fn, _ in group:
                        results.append(await fn(conn))
            except Exception:
                for fn, fut in group:
                    try:
                        async with self.db.write() as conn:
                            result = await fn(conn)
                    except Exception as e:
                        if not fut.done():
                            fut.set_exception(e)
                    else:
                        if not fut.done():
                            fut.set_result(result)
                continue
            for (_, fut), result in zip(group, results, strict=True):
                if not fut.done():
                    fut.set_result(result)


async def grouped(db: Any, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(conn)`` in the next group commit of ``db``."""
    group = _groups.get(db)
    if group is None:
        group = _groups[db] = GroupCommit(db)
    return await group.run(fn)


def _row(r: Any) -> dict[str, Any]:
    return dict(r._mapping)


# --- campaigns and texters ---------------------------------------------------------------------------


async def create_campaign(db: Any, values: dict[str, Any], owner_id: str, owner_name: str) -> dict[str, Any]:
    now = time.time()
    async with db.write() as conn:
        res = await conn.execute(insert(campaigns).values(**values, created_by=owner_id, created_at=now))
        cid = int(res.inserted_primary_key[0])
        await conn.execute(insert(texters).values(campaign_id=cid, texter_id=owner_id, name=owner_name, role="owner"))
    return await get_campaign(db, cid)


async def get_campaign(db: Any, campaign_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
    if row is None:
        raise NotFound(f"no campaign {campaign_id}", code="campaign_not_found")
    return _row(row)


async def update_campaign(db: Any, campaign_id: int, values: dict[str, Any]) -> dict[str, Any]:
    async with db.write() as conn:
        await conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))
    return await get_campaign(db, campaign_id)


async def list_campaigns(db: Any, texter_id: str | None) -> list[dict[str, Any]]:
    """Every campaign (``texter_id`` None: an administrator) or those the texter belongs to."""
    q = select(campaigns).order_by(campaigns.c.id)
    if texter_id is not None:
        q = q.join(texters, texters.c.campaign_id == campaigns.c.id).where(texters.c.texter_id == texter_id)
    async with db.read() as conn:
        return [_row(r) for r in await conn.execute(q)]


async def role_of(db: Any, campaign_id: int, texter_id: str) -> str | None:
    async with db.read() as conn:
        role = await conn.scalar(
            select(texters.c.role).where(texters.c.campaign_id == campaign_id, texters.c.texter_id == texter_id)
        )
    return str(role) if role is not None else None


async def set_texter(db: Any, campaign_id: int, texter_id: str, name: str, role: str) -> None:
    async with db.write() as conn:
        done = await conn.execute(
            update(texters)
            .where(texters.c.campaign_id == campaign_id, texters.c.texter_id == texter_id)
            .values(name=name, role=role)
        )
        if done.rowcount == 0:
            await conn.execute(
                insert(texters).values(campaign_id=campaign_id, texter_id=texter_id, name=name, role=role)
            )


async def list_texters(db: Any, campaign_id: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(texters).where(texters.c.campaign_id == campaign_id))
        return [_row(r) for r in rows]


# --- contacts and assignments --------------------------------------------------------------------------


async def existing_cells(db: Any, campaign_id: int, cells: Sequence[str]) -> set[str]:
    out: set[str] = set()
    async with db.read() as conn:
        for i in range(0, len(cells), 500):
            chunk = cells[i : i + 500]
            q = select(contacts.c.cell).where(contacts.c.campaign_id == campaign_id, contacts.c.cell.in_(chunk))
            out.update(r[0] for r in await conn.execute(q))
    return out


async def opted_out_among(db: Any, cells: Sequence[str]) -> set[str]:
    out: set[str] = set()
    async with db.read() as conn:
        for i in range(0, len(cells), 500):
            q = select(opt_outs.c.phone).where(opt_outs.c.phone.in_(cells[i : i + 500]))
            out.update(r[0] for r in await conn.execute(q))
    return out


async def add_contacts(db: Any, campaign_id: int, rows: Iterable[ContactRow], custom_fields: Sequence[str]) -> int:
    values: list[dict[str, Any]] = [
        {"campaign_id": campaign_id, "cell": c.cell, "first_name": c.first_name, "last_name": c.last_name,
         "zip": c.zip, "zone": c.zone, "custom": c.custom, "status": "new", "tags": []}
        for c in rows
    ]  # fmt: skip
    if not values:
        return 0
    async with db.write() as conn:
        await conn.execute(insert(contacts), values)
        camp = (await conn.execute(select(campaigns.c.custom_fields).where(campaigns.c.id == campaign_id))).scalar()
        merged = list(dict.fromkeys([*(camp or []), *custom_fields]))
        await conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(custom_fields=merged))
    return len(values)


async def assign(db: Any, campaign_id: int, texter_id: str, count: int) -> int:
    """Give ``texter_id`` up to ``count`` unassigned contacts; returns how many it got."""
    async with db.write() as conn:
        ids = [
            r[0]
            for r in await conn.execute(
                select(contacts.c.id)
                .where(contacts.c.campaign_id == campaign_id, contacts.c.texter_id.is_(None))
                .order_by(contacts.c.id)
                .limit(count)
            )
        ]
        if not ids:
            return 0
        res = await conn.execute(
            update(contacts).where(contacts.c.id.in_(ids), contacts.c.texter_id.is_(None)).values(texter_id=texter_id)
        )
        return int(res.rowcount)


async def unsent_count(db: Any, campaign_id: int, texter_id: str) -> int:
    async with db.read() as conn:
        n = await conn.scalar(
            select(func.count())
            .select_from(contacts)
            .where(contacts.c.campaign_id == campaign_id, contacts.c.texter_id == texter_id, contacts.c.status == "new")
        )
    return int(n or 0)


async def next_contacts(db: Any, campaign_id: int, texter_id: str, limit: int) -> list[dict[str, Any]]:
    """The texter's next contacts not texted yet, in order (opted-out numbers skipped)."""
    q = (
        select(contacts)
        .outerjoin(opt_outs, opt_outs.c.phone == contacts.c.cell)
        .where(
            contacts.c.campaign_id == campaign_id,
            contacts.c.texter_id == texter_id,
            contacts.c.status == "new",
            opt_outs.c.phone.is_(None),
        )
        .order_by(contacts.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        return [_row(r) for r in await conn.execute(q)]


async def get_contact(db: Any, contact_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(contacts).where(contacts.c.id == contact_id))).first()
    if row is None:
        raise NotFound(f"no contact {contact_id}", code="contact_not_found")
    return _row(row)


async def reassign(db: Any, contact_id: int, texter_id: str) -> None:
    async with db.write() as conn:
        res = await conn.execute(update(contacts).where(contacts.c.id == contact_id).values(texter_id=texter_id))
    if res.rowcount == 0:
        raise NotFound(f"no contact {contact_id}", code="contact_not_found")


async def set_tags(db: Any, contact_id: int, tags: list[str]) -> None:
    async with db.write() as conn:
        await conn.execute(update(contacts).where(contacts.c.id == contact_id).values(tags=tags))


# --- sending ------------------------------------------------------------------------------------------


async def snapshot(db: Any, contact_id: int) -> tuple[SendSnapshot, dict[str, Any], dict[str, Any]]:
    """The send checks' snapshot, the contact and its campaign's script fields: one query."""
    q = (
        select(
            contacts,
            campaigns.c.active,
            campaigns.c.due_at,
            campaigns.c.start_hour,
            campaigns.c.end_hour,
            campaigns.c.script,
            texters.c.name.label("texter_name"),
            opt_outs.c.phone.label("opted_out_phone"),
        )
        .join(campaigns, campaigns.c.id == contacts.c.campaign_id)
        .outerjoin(
            texters, and_(texters.c.campaign_id == contacts.c.campaign_id, texters.c.texter_id == contacts.c.texter_id)
        )
        .outerjoin(opt_outs, opt_outs.c.phone == contacts.c.cell)
        .where(contacts.c.id == contact_id)
    )
    async with db.read() as conn:
        row = (await conn.execute(q)).first()
    if row is None:
        raise NotFound(f"no contact {contact_id}", code="contact_not_found")
    m = row._mapping
    snap = SendSnapshot(
        contact_id=m["id"], campaign_id=m["campaign_id"], cell=m["cell"], zone=m["zone"], texter_id=m["texter_id"],
        contact_status=m["status"], campaign_active=bool(m["active"]), due_at=m["due_at"],
        start_hour=m["start_hour"], end_hour=m["end_hour"], opted_out=m["opted_out_phone"] is not None,
    )  # fmt: skip
    return snap, dict(m), {"script": m["script"], "texter_name": m["texter_name"] or ""}


async def claim(
    db: Any, snap: SendSnapshot, texter_id: str, body: str, send_before: float, *, initial: bool
) -> int | None:
    """Take the contact for this send and write the message as ``claimed``; returns its id, or None
    when another click (or another texter) got there first."""
    now = time.time()

    async def write(conn: Any) -> int | None:
        if initial:
            res = await conn.execute(
                update(contacts)
                .where(contacts.c.id == snap.contact_id, contacts.c.texter_id == texter_id, contacts.c.status == "new")
                .values(status="texted", texted_at=now)
            )
        else:
            res = await conn.execute(
                update(contacts)
                .where(contacts.c.id == snap.contact_id, contacts.c.texter_id == texter_id)
                .values(texted_at=now)
            )
        if res.rowcount != 1:
            return None
        ins = await conn.execute(
            insert(messages).values(
                campaign_id=snap.campaign_id,
                contact_id=snap.contact_id,
                texter_id=texter_id,
                direction="out",
                body=body,
                status=MessageStatus.CLAIMED.value,
                send_before=send_before,
                created_at=now,
                updated_at=now,
            )
        )
        return int(ins.inserted_primary_key[0])

    return await grouped(db, write)


async def record_sent(db: Any, message_id: int, sid: str, status: str) -> None:
    now = time.time()

    async def write(conn: Any) -> None:
        await conn.execute(
            update(messages).where(messages.c.id == message_id).values(sid=sid, status=status, updated_at=now)
        )

    await grouped(db, write)


async def record_failed(
    db: Any, message_id: int, snap: SendSnapshot, error_code: int | None, *, initial: bool, release: bool
) -> None:
    """A send Twilio refused: the message failed; ``release`` gives the contact back (a retryable
    failure), else it stays texted (an opted-out or invalid number must not be retried)."""
    async with db.write() as conn:
        await conn.execute(
            update(messages)
            .where(messages.c.id == message_id)
            .values(status=MessageStatus.FAILED.value, error_code=error_code, updated_at=time.time())
        )
        if initial and release:
            await conn.execute(update(contacts).where(contacts.c.id == snap.contact_id).values(status="new"))


async def record_status(db: Any, sid: str, status: str, error_code: int | None) -> bool:
    """Record a terminal status once (one conditional UPDATE); interim and repeated ones change nothing."""
    if status not in {s.value for s in TERMINAL}:
        return False
    not_terminal = [s.value for s in (*INTERIM, MessageStatus.CLAIMED)]
    now = time.time()

    async def write(conn: Any) -> bool:
        res = await conn.execute(
            update(messages)
            .where(messages.c.sid == sid, messages.c.status.in_(not_terminal))
            .values(status=status, error_code=error_code, updated_at=now)
        )
        return bool(res.rowcount)

    return await grouped(db, write)


async def conversation(db: Any, contact_id: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(messages).where(messages.c.contact_id == contact_id).order_by(messages.c.id))
        return [_row(r) for r in rows]


async def conversations(db: Any, campaign_id: int, texter_id: str | None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(contacts).where(contacts.c.campaign_id == campaign_id, contacts.c.status != "new")
    if texter_id is not None:
        q = q.where(contacts.c.texter_id == texter_id)
    q = q.order_by(contacts.c.texted_at.desc()).limit(limit)
    async with db.read() as conn:
        return [_row(r) for r in await conn.execute(q)]


async def messages_for_review(db: Any, campaign_id: int, limit: int = 200) -> list[dict[str, Any]]:
    q = select(messages).where(messages.c.campaign_id == campaign_id).order_by(messages.c.id.desc()).limit(limit)
    async with db.read() as conn:
        return [_row(r) for r in await conn.execute(q)]


# --- inbound, opt-outs, answers -------------------------------------------------------------------------


async def inbound(db: Any, phone: str, body: str, sid: str) -> dict[str, Any] | None:
    """File an inbound text under the conversation of the texter who last texted ``phone``; returns
    that contact (None: nobody texted this number). A repeated webhook (same sid) files nothing."""
    now = time.time()
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(contacts)
                .where(contacts.c.cell == phone, contacts.c.status != "new")
                .order_by(contacts.c.texted_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        contact = _row(row)
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(messages).values(
                        campaign_id=contact["campaign_id"],
                        contact_id=contact["id"],
                        texter_id=contact["texter_id"],
                        direction="in",
                        body=body,
                        sid=sid or None,
                        status=MessageStatus.RECEIVED.value,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return contact  # the same message again
        await conn.execute(update(contacts).where(contacts.c.id == contact["id"]).values(status="replied"))
    return contact


async def is_opted_out(db: Any, phone: str) -> bool:
    async with db.read() as conn:
        return await conn.scalar(select(opt_outs.c.phone).where(opt_outs.c.phone == phone)) is not None


def _log_row(phone: str, action: str, source: str, detail: str, at: float, actor: tuple[str, str]) -> dict[str, Any]:
    return {"phone": phone, "action": action, "source": source, "detail": detail, "at": at,
            "actor_id": actor[0], "actor_name": actor[1]}  # fmt: skip


async def opt_out(db: Any, phone: str, source: str, detail: str = "", actor: tuple[str, str] = ("", "")) -> bool:
    """Put ``phone`` on the shared list; audited (``actor``: who did it by hand, id and name).
    False when it was on it already (nothing written)."""
    now = time.time()
    async with db.write() as conn:
        try:
            async with conn.begin_nested():
                await conn.execute(insert(opt_outs).values(phone=phone, source=source, at=now))
        except IntegrityError:
            return False
        await conn.execute(insert(opt_out_log).values(_log_row(phone, "opt_out", source, detail, now, actor)))
    return True


async def opt_in(db: Any, phone: str, source: str, detail: str, actor: tuple[str, str] = ("", "")) -> bool:
    """Take ``phone`` off the list (the person texted START, or an admin by hand); audited.
    False when it was not on it (nothing written)."""
    now = time.time()
    async with db.write() as conn:
        res = await conn.execute(delete(opt_outs).where(opt_outs.c.phone == phone))
        if res.rowcount == 0:
            return False
        await conn.execute(insert(opt_out_log).values(_log_row(phone, "opt_in", source, detail, now, actor)))
    return True


async def opt_out_history(db: Any, phone: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(opt_out_log).where(opt_out_log.c.phone == phone).order_by(opt_out_log.c.id))
        return [_row(r) for r in rows]


async def save_answer(db: Any, contact_id: int, question: str, answer: str, texter_id: str) -> None:
    now = time.time()
    async with db.write() as conn:
        res = await conn.execute(
            update(answers)
            .where(answers.c.contact_id == contact_id, answers.c.question == question)
            .values(answer=answer, texter_id=texter_id, at=now)
        )
        if res.rowcount == 0:
            await conn.execute(
                insert(answers).values(
                    contact_id=contact_id, question=question, answer=answer, texter_id=texter_id, at=now
                )
            )


async def export_answers(db: Any, campaign_id: int) -> list[dict[str, Any]]:
    q = (
        select(
            contacts.c.id,
            contacts.c.first_name,
            contacts.c.last_name,
            contacts.c.cell,
            contacts.c.zip,
            contacts.c.texter_id,
            contacts.c.tags,
            answers.c.question,
            answers.c.answer,
        )
        .join(answers, answers.c.contact_id == contacts.c.id)
        .where(contacts.c.campaign_id == campaign_id)
        .order_by(contacts.c.id, answers.c.question)
    )
    async with db.read() as conn:
        return [_row(r) for r in await conn.execute(q)]


__all__ = [
    "GroupCommit", "add_contacts", "answers", "assign", "campaigns", "claim", "contacts", "conversation",
    "conversations",
    "create_campaign", "existing_cells", "export_answers", "get_campaign", "get_contact", "grouped",
    "inbound", "is_opted_out", "list_campaigns", "list_texters", "messages", "messages_for_review", "metadata",
    "next_contacts", "opt_in", "opt_out", "opt_out_history", "opt_outs", "opted_out_among", "reassign",
    "record_failed", "record_sent", "record_status", "role_of", "save_answer", "set_tags", "set_texter",
    "snapshot", "texters", "unsent_count", "update_campaign",
]  # fmt: skip
