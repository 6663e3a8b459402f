"""The summary e-mail: SMTP (stdlib smtplib, STARTTLS or implicit TLS, optional login) or Amazon SES
(boto3). Sending blocks, so callers run it in a thread."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

from .errors import MailError


@dataclass(frozen=True)
class MailOptions:
    """Where and how the summary goes.

    Attributes:
        recipients: To addresses (none: no e-mail).
        sender: From address.
        transport: ``smtp`` or ``ses``.
        smtp_host, smtp_port: the SMTP server.
        smtp_username, smtp_password: login, when set.
        smtp_security: ``none``, ``starttls`` or ``tls`` (implicit, port 465).
        ses_region: AWS region for SES (default: boto3's configuration).
        timeout_s: connection timeout.
    """

    recipients: tuple[str, ...] = ()
    sender: str = "couchpotato-vetting@localhost"
    transport: str = "smtp"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = "none"
    ses_region: str = ""
    timeout_s: float = 30.0


def build_message(
    options: MailOptions, subject: str, body: str, attachments: Sequence[tuple[str, bytes, str]] = ()
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = options.sender
    msg["To"] = ", ".join(options.recipients)
    msg.set_content(body)
    for filename, data, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send_mail(options: MailOptions, msg: EmailMessage) -> None:
    """Hand ``msg`` to the server; MailError (one line) when it cannot."""
    if not options.recipients:
        return
    if options.transport == "ses":
        _send_ses(options, msg)
        return
    if options.transport != "smtp":
        raise MailError(f"unknown mail transport {options.transport!r}: use smtp or ses")
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
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        detail = " ".join(str(e).split())
        raise MailError(f"cannot send the summary through {where}: {type(e).__name__}: {detail}") from e


def send_summary(
    options: MailOptions, subject: str, body: str, attachments: Sequence[tuple[str, bytes, str]] = ()
) -> None:
    """Build the message and send it (blocking: run it in a thread)."""
    send_mail(options, build_message(options, subject, body, attachments))


def _send_ses(options: MailOptions, msg: EmailMessage) -> None:
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("ses", region_name=options.ses_region or None)
        client.send_raw_email(
            Source=options.sender, Destinations=list(options.recipients), RawMessage={"Data": msg.as_bytes()}
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise MailError(f"cannot send the summary through SES: {' '.join(str(e).split())}") from e


__all__ = ["MailOptions", "build_message", "send_mail", "send_summary"]
