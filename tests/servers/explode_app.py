"""The real application plus one route that fails unexpectedly with personal data in its message.

Served by a real uvicorn process in tests/test_log_scan_server.py: the forced error shows what the
server (not only the app's handlers) writes to its log.
"""

from __future__ import annotations

import json
import os

from fastapi import FastAPI

from app.main import create_app


def build() -> FastAPI:
    """create_app() and a GET /__explode whose exception message is the text in KAKANAI_TEST_EXPLODE_FILE."""
    application = create_app()
    message_file = os.environ["KAKANAI_TEST_EXPLODE_FILE"]

    def explode() -> None:
        with open(message_file, encoding="utf-8") as f:
            raise RuntimeError(" ".join(json.load(f)))

    application.add_api_route("/__explode", explode)
    return application


app = build()
