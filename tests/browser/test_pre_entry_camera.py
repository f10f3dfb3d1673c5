"""The counter's 「カメラで読み取る」 in real Chromium: a fake camera (a video file of the phone's QR code)
is decoded by the vendored @zxing/library and opens the resident's pre-entry as a visit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import segno
from PIL import Image

from app.services import pre_entry
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TABLET, LiveServer
from tests.browser.test_counter_flow import log_in

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 640, 480


def write_y4m(path: Path, image: Image.Image, frames: int = 10) -> None:
    """A tiny Y4M video (what Chromium's fake camera plays) showing one grey-scale picture."""
    frame = Image.new("L", (WIDTH, HEIGHT), 255)
    frame.paste(image, ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2))
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


@pytest.fixture
def camera_code(tmp_path: Path, live_server: LiveServer) -> Iterator[tuple[str, Path]]:
    with live_server.session() as s:
        code, _token, _row = pre_entry.create_draft(s, lang="ja", ip="198.51.100.7", secret="t", limits=pre_entry.Limits())
        s.commit()
    qr = segno.make(pre_entry.qr_content(code), error="m")
    png = tmp_path / "qr.png"
    qr.save(str(png), scale=8, border=4)
    video = tmp_path / "qr.y4m"
    write_y4m(video, Image.open(png).convert("L"))
    yield code, video


def test_the_camera_button_reads_the_qr_and_opens_the_visit(live_server: LiveServer, camera_code: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    code, video = camera_code
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        context = browser.new_context(viewport=TABLET, locale="ja-JP")
        context.grant_permissions(["camera"], origin=live_server.url)
        context.set_default_timeout(30_000)
        page: Any = context.new_page()
        try:
            log_in(page, live_server.url)
            page.get_by_role("button", name="カメラで読み取る").click()
            page.wait_for_url("**/counter/visits/*")
            case_id = page.url.split("/counter/visits/")[1].split("?")[0]
        finally:
            context.close()
            browser.close()
    with live_server.session() as s:
        from app.models import PreEntryOriginal

        assert s.get(PreEntryOriginal, case_id) is not None
    assert len(code) == 8
