"""BER-TLV as the 券面事項入力補助AP stores it (private-class tags such as FF20 / DF22)."""

from __future__ import annotations

from dataclasses import dataclass


class TlvError(ValueError):
    """The bytes are not a well-formed TLV object."""


@dataclass(frozen=True)
class Tlv:
    """One TLV object: its tag (as an int of its raw bytes), value, and where it ends in the buffer."""

    tag: int
    value: bytes
    end: int


def _tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("tag missing")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:  # multi-byte tag number: continuation bytes have bit 8 set
        while True:
            if pos >= len(data):
                raise TlvError("tag truncated")
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
    return tag, pos


def _length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("length missing")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3 or pos + count > len(data):
        raise TlvError("bad length")
    return int.from_bytes(data[pos:pos + count], "big"), pos + count


def header_size(data: bytes) -> tuple[int, int]:
    """(header length, value length) of the TLV object at the start of `data`."""
    _, pos = _tag(data, 0)
    length, pos = _length(data, pos)
    return pos, length


def parse_one(data: bytes, pos: int = 0) -> Tlv:
    """The TLV object starting at `pos`."""
    tag, pos = _tag(data, pos)
    length, pos = _length(data, pos)
    if pos + length > len(data):
        raise TlvError("value truncated")
    return Tlv(tag, bytes(data[pos:pos + length]), pos + length)


def parse_children(value: bytes) -> dict[int, bytes]:
    """The primitive objects inside a constructed value, by tag (padding 0x00/0xFF after the last is ignored)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(value) and value[pos] not in (0x00, 0xFF):
        item = parse_one(value, pos)
        out.setdefault(item.tag, item.value)
        pos = item.end
    return out
