"""The PC/SC side: find the reader with the card and hand out a `transmit` function (pyscard)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.cardbridge.kenhojo import CardError, Transmit, select_ap

log = logging.getLogger("kakanai.cardbridge")
_INS_NAMES = {0xA4: "SELECT", 0x20: "VERIFY", 0xB0: "READ BINARY"}


def _traced(raw: Transmit) -> Transmit:
    # Trace commands without their data: VERIFY carries the PIN, READ BINARY answers personal data.
    def transmit(apdu: list[int]) -> tuple[list[int], int, int]:
        data, sw1, sw2 = raw(apdu)
        log.debug("APDU %s P1P2=%02X%02X -> SW %02X%02X (%d bytes)", _INS_NAMES.get(apdu[1], f"INS {apdu[1]:02X}"),
                  apdu[2], apdu[3], sw1, sw2, len(data))
        return data, sw1, sw2

    return transmit


@contextmanager
def connect(reader_name: str | None = None, *, wait_seconds: float = 30.0) -> Iterator[Transmit]:
    """Connect to the マイナンバーカード (the first reader holding one, or the one whose name contains reader_name)."""
    try:
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.System import readers
    except ImportError as exc:  # pragma: no cover - depends on the counter PC
        raise CardError("pyscard がインストールされていません（pip install 'kakanai[card]'）") from exc

    deadline = time.monotonic() + wait_seconds
    announced = False
    not_myna = False
    while True:
        try:
            found = [r for r in readers() if reader_name is None or reader_name in str(r)]
        except Exception as exc:  # pyscard raises its own classes when pcscd is not running
            raise CardError("カードリーダーのサービス（pcscd）に接続できません") from exc
        for reader in found:
            connection = reader.createConnection()
            try:
                connection.connect()
            except (NoCardException, CardConnectionException):
                continue
            transmit = _traced(connection.transmit)
            try:
                select_ap(transmit)  # another kind of IC card in this reader: try the next one
            except CardError:
                connection.disconnect()
                not_myna = True
                continue
            log.info("card found in reader %s", reader)
            try:
                yield transmit
            finally:
                try:
                    connection.disconnect()
                except CardConnectionException:
                    pass
            return
        if time.monotonic() >= deadline:
            if not_myna:
                raise CardError("置かれたカードはマイナンバーカードではありません")
            raise CardError("カードリーダーにカードが見つかりません" if found else "カードリーダーが見つかりません")
        if not announced:
            print("カードをリーダーに置いてください…", flush=True)
            announced = True
        time.sleep(0.5)
