"""Web Push (RFC 8030/8291/8292) through pywebpush, signed with the city's VAPID key."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from app.services.notify import ChannelGone, Notice, Sender


def generate_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key, base64url DER; public key, base64url uncompressed point)."""
    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    public = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64(private), _b64(public)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sender(*, private_key: str, subject: str, timeout: float = 10.0) -> Sender:
    """A channel that pushes the notice as JSON {title, body, url} to the browser's push service."""

    def send(target: str, notice: Notice) -> None:
        subscription = json.loads(target)
        payload = json.dumps({"title": notice.title, "body": notice.body, "url": notice.url}, ensure_ascii=False)
        try:
            webpush(subscription, data=payload, vapid_private_key=private_key, vapid_claims={"sub": subject},
                    content_encoding="aes128gcm", timeout=timeout, ttl=3600)
        except WebPushException as exc:
            if exc.response is not None and exc.response.status_code in (404, 410):
                raise ChannelGone() from None
            raise

    return send
