"""Check a signature image completely (Pillow decodes every pixel) before it is stored or drawn."""

from __future__ import annotations

import io
import warnings

from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A tablet signature pad is at most a few thousand pixels wide; anything larger is not a signature
# and could be a decompression bomb (a tiny file that decodes to gigabytes).
MAX_WIDTH = 4000
MAX_HEIGHT = 2000
MIN_SIDE = 8


class SignatureImageError(ValueError):
    """The bytes are not a usable signature image; the message is Japanese, for the clerk."""


def check_signature_png(data: bytes, *, max_bytes: int) -> tuple[int, int]:
    """Decode the whole PNG and return its (width, height); raise SignatureImageError otherwise."""
    if len(data) > max_bytes:
        raise SignatureImageError(f"署名の画像が大きすぎます（{max_bytes // 1024} KiB まで）")
    if not data.startswith(PNG_MAGIC):
        raise SignatureImageError("署名はPNG画像で送ってください")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != "PNG":
                    raise SignatureImageError("署名はPNG画像で送ってください")
                width, height = probe.size
                if width > MAX_WIDTH or height > MAX_HEIGHT:
                    raise SignatureImageError(f"署名の画像の縦横が大きすぎます（{MAX_WIDTH}×{MAX_HEIGHT}ピクセルまで）")
                if width < MIN_SIDE or height < MIN_SIDE:
                    raise SignatureImageError("署名の画像が小さすぎます。もう一度署名してください")
                probe.verify()  # chunk checksums
            # verify() leaves the image unusable: open again and decode every pixel (a truncated
            # stream fails here, not later in the PDF renderer).
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except SignatureImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SignatureImageError(f"署名の画像の縦横が大きすぎます（{MAX_WIDTH}×{MAX_HEIGHT}ピクセルまで）") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
        raise SignatureImageError("署名の画像が壊れているか途中で切れています。もう一度署名してください") from None
    return width, height


def usable_signature(data: bytes | None, *, max_bytes: int) -> bytes | None:
    """The stored signature if it still checks out, else None (a PDF is drawn without it, never fails)."""
    if data is None:
        return None
    try:
        check_signature_png(data, max_bytes=max_bytes)
    except SignatureImageError:
        return None
    return data
