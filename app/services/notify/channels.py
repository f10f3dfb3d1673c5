"""The channels the settings turn on (Web Push when VAPID keys are set, e-mail when an SMTP host is)."""

from __future__ import annotations

from app.services.notify import Sender, mail, webpush
from app.settings import Settings


def from_settings(settings: Settings) -> dict[str, Sender]:
    """Senders by channel name for `dispatch`."""
    senders: dict[str, Sender] = {}
    if settings.vapid_private_key is not None:
        senders["webpush"] = webpush.sender(private_key=settings.vapid_private_key.get_secret_value(),
                                            subject=settings.vapid_subject)
    if settings.smtp_host:
        senders["email"] = mail.sender(host=settings.smtp_host, port=settings.smtp_port, from_address=settings.smtp_from)
    return senders
