"""E-mail notices through the city's SMTP server (plain text, the resident's language, nothing personal)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from app.services.notify import Notice, Sender


def sender(*, host: str, port: int, from_address: str, timeout: float = 10.0) -> Sender:
    """A channel that mails the notice to the address the resident gave."""

    def send(target: str, notice: Notice) -> None:
        message = EmailMessage()
        message["From"] = from_address
        message["To"] = target
        message["Subject"] = notice.title
        message.set_content(f"{notice.body}\n\n{notice.url}\n")
        for filename, mime, data in notice.attachments:
            maintype, _, subtype = mime.partition("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.send_message(message)

    return send
