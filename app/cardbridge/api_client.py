"""The bridge's side of the public HTTP API (standard library only, so the bridge stays small)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    """The service refused or could not be reached; the message is for the clerk."""


def _post(base_url: str, path: str, body: dict[str, Any], *, timeout: float = 15.0) -> dict[str, Any]:
    request = urllib.request.Request(base_url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json", "Accept": "application/json",
                                              "User-Agent": "kakanai-card-bridge"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the configured server
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        message = payload.get("message") or f"サーバーがエラーを返しました（{exc.code}）"
        details = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in payload.get("errors") or [])
        raise ApiError(f"{message}{'（' + details + '）' if details else ''}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ApiError(f"サーバーに接続できません: {base_url}") from exc


def check_code(base_url: str, code: str) -> dict[str, Any]:
    """Ask whether the pairing code is usable (before the resident types the PIN)."""
    return _post(base_url, "/api/v1/card-readings/check", {"pairing_code": code})


def post_reading(base_url: str, code: str, facts: dict[str, str]) -> dict[str, Any]:
    """Send the card's facts to the paired visit."""
    return _post(base_url, "/api/v1/card-readings", {"pairing_code": code, **facts})
