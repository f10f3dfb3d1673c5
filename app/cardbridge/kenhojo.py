"""The 券面事項入力補助AP protocol: SELECT, VERIFY (PIN or 照合番号B), READ BINARY, hash check.

Identifiers as published by public open-source readers of the card (AokiApp/jsapdu, jpki/myna):
the AP's AID is D3 92 10 00 31 00 01 01 04 08; inside it EF 0001 holds the My Number (FF10 …),
EF 0002 the 基本4情報 (FF20 { DF21 offsets, DF22 name, DF23 address, DF24 birth date, DF25 sex }),
EF 0003 the signed hashes (FF30 { DF31 SHA-256 of EF 0001's object, DF32 SHA-256 of EF 0002's
object, DF33 signature }). EF 0011 is the 4-digit 券面事項入力補助用暗証番号, EF 0015 照合番号B
(birth date YYMMDD + expiry year YYYY + security code, 14 characters).

The card reader is reached through `transmit(apdu) -> (data, sw1, sw2)`, which pyscard provides.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from app.cardbridge import tlv

AID = bytes.fromhex("D3921000310001010408")
EF_MY_NUMBER = 0x0001
EF_BASIC_FOUR = 0x0002
EF_HASHES = 0x0003
EF_PIN = 0x0011
EF_COLLATION_B = 0x0015

TAG_MY_NUMBER = 0xFF10
TAG_BASIC_FOUR = 0xFF20
TAG_NAME, TAG_ADDRESS, TAG_BIRTH, TAG_SEX = 0xDF22, 0xDF23, 0xDF24, 0xDF25
TAG_HASHES = 0xFF30
TAG_MY_NUMBER_HASH, TAG_BASIC_FOUR_HASH = 0xDF31, 0xDF32

Transmit = Callable[[list[int]], tuple[list[int], int, int]]


class CardError(Exception):
    """The card answered something the bridge cannot use (message in Japanese for the clerk)."""


class WrongSecret(CardError):
    """VERIFY failed; `remaining` tries are left before the card locks."""

    def __init__(self, remaining: int):
        super().__init__(f"暗証番号が違います（残り{remaining}回で利用できなくなります）")
        self.remaining = remaining


class Locked(CardError):
    """The secret is blocked (three wrong tries); only the city's card office can reset it."""

    def __init__(self) -> None:
        super().__init__("暗証番号がロックされています。マイナンバーカードの窓口で初期化が必要です")


class Tampered(CardError):
    """The data read does not match the hashes the card keeps for it."""


@dataclass(frozen=True)
class CardFacts:
    """What the card says: the 基本4情報 as printed on the card face, and the My Number."""

    name: str
    address: str
    birth_date: str
    sex: str
    my_number: str


def _check(sw1: int, sw2: int, what: str) -> None:
    if (sw1, sw2) != (0x90, 0x00):
        raise CardError(f"カードが{what}に応じません（SW {sw1:02X}{sw2:02X}）")


def select_ap(transmit: Transmit) -> None:
    """SELECT the 券面事項入力補助AP by its AID."""
    _, sw1, sw2 = transmit([0x00, 0xA4, 0x04, 0x0C, len(AID), *AID])
    if (sw1, sw2) == (0x6A, 0x82):
        raise CardError("マイナンバーカードではないか、券面事項入力補助APがありません")
    _check(sw1, sw2, "AP選択")


def _select_ef(transmit: Transmit, fid: int) -> None:
    _, sw1, sw2 = transmit([0x00, 0xA4, 0x02, 0x0C, 0x02, fid >> 8, fid & 0xFF])
    _check(sw1, sw2, "ファイル選択")


def _tries_from(sw1: int, sw2: int) -> int | None:
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return sw2 & 0x0F
    return None


def remaining_tries(transmit: Transmit, *, collation_b: bool = False) -> int:
    """How many wrong tries the secret still allows (VERIFY without data; nothing is consumed)."""
    _select_ef(transmit, EF_COLLATION_B if collation_b else EF_PIN)
    _, sw1, sw2 = transmit([0x00, 0x20, 0x00, 0x80])
    if (sw1, sw2) == (0x90, 0x00):
        return 3
    if (sw1, sw2) == (0x69, 0x84):
        return 0
    tries = _tries_from(sw1, sw2)
    if tries is None:
        raise CardError(f"暗証番号の状態を読めません（SW {sw1:02X}{sw2:02X}）")
    return tries


def valid_pin(pin: str) -> bool:
    """A 券面事項入力補助用暗証番号 is exactly 4 digits."""
    return bool(re.fullmatch(r"[0-9]{4}", pin))


def valid_collation_b(value: str) -> bool:
    """照合番号B: birth date YYMMDD, expiry year YYYY and the 4-digit security code, 14 digits in all."""
    return bool(re.fullmatch(r"[0-9]{14}", value))


def verify(transmit: Transmit, secret: str, *, collation_b: bool = False) -> None:
    """VERIFY with the PIN (or 照合番号B); raises WrongSecret with the tries left, or Locked."""
    if not (valid_collation_b(secret) if collation_b else valid_pin(secret)):
        raise CardError("照合番号Bは数字14桁です" if collation_b else "暗証番号は数字4桁です")
    _select_ef(transmit, EF_COLLATION_B if collation_b else EF_PIN)
    data = list(secret.encode("ascii"))
    _, sw1, sw2 = transmit([0x00, 0x20, 0x00, 0x80, len(data), *data])
    del data
    if (sw1, sw2) == (0x90, 0x00):
        return
    if (sw1, sw2) == (0x69, 0x84) or (sw1, sw2) == (0x63, 0xC0):
        raise Locked()
    tries = _tries_from(sw1, sw2)
    if tries is not None:
        raise WrongSecret(tries)
    raise CardError(f"カードが照合に応じません（SW {sw1:02X}{sw2:02X}）")


def _read_object(transmit: Transmit, fid: int) -> bytes:
    # Read the header first, then exactly the object: files are padded past the TLV object.
    _select_ef(transmit, fid)
    head, sw1, sw2 = transmit([0x00, 0xB0, 0x00, 0x00, 0x08])
    _check(sw1, sw2, "読み出し")
    try:
        hlen, vlen = tlv.header_size(bytes(head))
    except tlv.TlvError as exc:
        raise CardError("カードのデータ形式が想定と異なります") from exc
    total = hlen + vlen
    out = bytearray(head[:total])
    while len(out) < total:
        chunk = min(0xFF, total - len(out))
        offset = len(out)
        data, sw1, sw2 = transmit([0x00, 0xB0, offset >> 8, offset & 0xFF, chunk])
        _check(sw1, sw2, "読み出し")
        if not data:
            raise CardError("カードのデータが途中で終わっています")
        out += bytes(data)
    return bytes(out[:total])


def _text(fields: dict[int, bytes], tag: int) -> str:
    try:
        return fields.get(tag, b"").decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CardError("カードの文字データを読めません") from exc


def read_facts(transmit: Transmit) -> CardFacts:
    """After a successful VERIFY: read the My Number and the 基本4情報 and check them against the card's hashes."""
    number_obj = _read_object(transmit, EF_MY_NUMBER)
    four_obj = _read_object(transmit, EF_BASIC_FOUR)
    hashes_obj = _read_object(transmit, EF_HASHES)
    try:
        number = tlv.parse_one(number_obj)
        four = tlv.parse_one(four_obj)
        hashes = tlv.parse_one(hashes_obj)
        fields = tlv.parse_children(four.value)
        digests = tlv.parse_children(hashes.value)
    except tlv.TlvError as exc:
        raise CardError("カードのデータ形式が想定と異なります") from exc
    if (number.tag, four.tag, hashes.tag) != (TAG_MY_NUMBER, TAG_BASIC_FOUR, TAG_HASHES):
        raise CardError("カードのデータ形式が想定と異なります")
    for obj, tag in ((number_obj, TAG_MY_NUMBER_HASH), (four_obj, TAG_BASIC_FOUR_HASH)):
        expected = digests.get(tag)
        if expected is None or not hmac.compare_digest(hashlib.sha256(obj).digest(), expected):
            raise Tampered("カードのデータが署名ファイルのハッシュと一致しません。読み取りを中止しました")
    try:
        my_number = number.value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CardError("個人番号を読めません") from exc
    if not re.fullmatch(r"[0-9]{12}", my_number):
        raise CardError("個人番号の形式が想定と異なります")
    return CardFacts(name=_text(fields, TAG_NAME), address=_text(fields, TAG_ADDRESS),
                     birth_date=_text(fields, TAG_BIRTH), sex=_text(fields, TAG_SEX), my_number=my_number)
