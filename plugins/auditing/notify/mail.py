"""E-mail to the owner of each resource with new failures (where the owner is known: a tag, the
user's own address): one message per owner per run, by SMTP (stdlib smtplib) or Amazon SES (boto3).
Blocking: callers run it in a thread."""

from __future__ import annotations

import smtplib
import ssl
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from ..errors import NotifyError
from ..records import Finding


@dataclass(frozen=True)
class MailOptions:
    """How owner e-mails go out.

    Attributes:
        sender: From address.
        transport: ``smtp`` or ``ses``.
        smtp_host, smtp_port, smtp_username, smtp_password, smtp_security (``none``/``starttls``/``tls``).
        ses_region: AWS region for SES (default: boto3's).
        fallback_to: recipients of the failures whose owner is unknown (none: those are not mailed).
        timeout_s: connection timeout.
    """

    sender: str = "couchpotato-auditing@localhost"
    transport: str = "smtp"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = "none"
    ses_region: str = ""
    fallback_to: tuple[str, ...] = ()
    timeout_s: float = 30.0


def owner_messages(new: Sequence[Finding], options: MailOptions) -> list[EmailMessage]:
    """One message per owner (or to the fallback recipients) listing their new failures."""
    by_owner: dict[tuple[str, ...], list[Finding]] = defaultdict(list)
    for f in new:
        if f.status != "FAIL":
            continue
        to = (f.owner,) if f.owner else options.fallback_to
        if to:
            by_owner[to].append(f)
    out = []
    for to, items in sorted(by_owner.items()):
        msg = EmailMessage()
        msg["Subject"] = f"[audit] {len(items)} new finding(s) on resources you own"
        msg["From"] = options.sender
        msg["To"] = ", ".join(to)
        lines = ["The standing audit found new problems on resources listed with you as owner:", ""]
        for f in items:
            lines += [f"- [{f.severity}] {f.title}", f"  resource: {f.resource_id} ({f.account}, {f.region})",
                      f"  {f.message}", f"  fix: {f.remediation} {f.remediation_url}".rstrip(), ""]  # fmt: skip
        msg.set_content("\n".join(lines))
        out.append(msg)
    return out


def send_messages(options: MailOptions, messages: Sequence[EmailMessage]) -> int:
    """Send them all; NotifyError (one line) when the server refuses or cannot be reached."""
    if not messages:
        return 0
    if options.transport == "ses":
        return _send_ses(options, messages)
    if options.transport != "smtp":
        raise NotifyError(f"unknown mail transport {options.transport!r}: use smtp or ses")
    where = f"{options.smtp_host}:{options.smtp_port}"
    try:
        if options.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                options.smtp_host, options.smtp_port, timeout=options.timeout_s, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(options.smtp_host, options.smtp_port, timeout=options.timeout_s)
        with smtp:
            if options.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if options.smtp_username:
                smtp.login(options.smtp_username, options.smtp_password)
            for msg in messages:
                smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        detail = " ".join(str(e).split())
        raise NotifyError(f"cannot send owner e-mail through {where}: {type(e).__name__}: {detail}") from e
    return len(messages)


def _send_ses(options: MailOptions, messages: Sequence[EmailMessage]) -> int:
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("ses", region_name=options.ses_region or None)
        for msg in messages:
            to = [a.strip() for a in str(msg["To"]).split(",")]
            client.send_raw_email(Source=options.sender, Destinations=to, RawMessage={"Data": msg.as_bytes()})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise NotifyError(f"cannot send owner e-mail through SES: {' '.join(str(e).split())}") from e
    return len(messages)


__all__ = ["MailOptions", "owner_messages", "send_messages"]
