"""The resident status JSON carries an ETag; a poll that sends it back gets 304 until something changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def ticket(client: TestClient, counter_headers: dict[str, str]) -> dict[str, Any]:
    client.post("/api/v1/queue/tickets", json={"life_events": ["move_in"]}, headers=counter_headers)
    res = client.post("/api/v1/queue/tickets", json={"life_events": ["birth"]}, headers=counter_headers)
    assert res.status_code == 201, res.text
    return res.json()


def test_etag_gives_304_until_the_status_changes(client: TestClient, counter_headers: dict[str, str],
                                                 ticket: dict[str, Any]) -> None:
    url = f"/api/v1/status/{ticket['status_token']}?lang=ja"
    first = client.get(url)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag == f'"{first.json()["version"]}"'
    assert first.headers["cache-control"] == "no-store"

    again = client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    # Another tag, or another language, is a full answer.
    assert client.get(url, headers={"If-None-Match": '"0000"'}).status_code == 200
    english = client.get(f"/api/v1/status/{ticket['status_token']}?lang=en", headers={"If-None-Match": tag})
    assert english.status_code == 200 and english.headers["etag"] != tag

    # The ticket ahead is called: the position changes, so does the tag.
    client.post("/api/v1/queue/call-next", json={"counter": "1"}, headers=counter_headers)
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["ticket"]["ahead"] == 0


def test_unknown_token_is_404_with_or_without_a_tag(client: TestClient) -> None:
    res = client.get("/api/v1/status/unknownTOKEN123", headers={"If-None-Match": "*"})
    assert res.status_code == 404 and "見つかりません" in res.json()["message"]
