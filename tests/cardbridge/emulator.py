"""A fictional person's マイナンバーカード, answering the 券面事項入力補助AP's APDUs through vpcd (vsmartcard).

vpcd (the virtual reader driver loaded by pcscd) connects to us on 127.0.0.1; every message either
way is a 2-byte big-endian length and a payload. A 1-byte payload is a reader control (0 power off,
1 power on, 2 reset, 4 get ATR); anything else is a command APDU, answered with a response APDU.
vpcd opens one slot per port: the first port holds the resident's card, the next one some other IC card
without the AP (vpcd in client mode cannot show an empty slot without stalling pcscd's start-up).
"""

from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass, field

AID = bytes.fromhex("D3921000310001010408")
ATR = bytes.fromhex("3B80800101")  # T=1, no historical bytes
OK = b"\x90\x00"


def _tlv(tag: bytes, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82, n >> 8, n & 0xFF])
    return tag + length + value


@dataclass
class Person:
    """Card-face data of a fictional resident."""

    name: str = "番号　花子"
    address: str = "大阪府大阪市北区梅田一丁目2番3号　梅田ハイツ301号室"
    birth_date: str = "19921103"
    sex: str = "2"
    my_number: str = "234567890121"
    pin: str = "7294"
    # 照合番号B: birth date YYMMDD + expiry year + security code
    collation_b: str = "921103" + "2034" + "5821"


@dataclass
class CardState:
    """What the card remembers: tries left, and (per power cycle) what is selected and verified."""

    pin_tries: int = 3
    b_tries: int = 3
    ap_selected: bool = False
    ef: int | None = None
    verified: bool = False
    log: list[bytes] = field(default_factory=list)


class FictionalCard:
    """Answers SELECT / VERIFY / READ BINARY like the 券面事項入力補助AP does."""

    def __init__(self, person: Person, *, tamper: bool = False):
        self.person = person
        self.state = CardState()
        self.lock = threading.Lock()
        number = _tlv(b"\xff\x10", person.my_number.encode())
        four = _tlv(b"\xff\x20", b"".join([
            _tlv(b"\xdf\x21", bytes.fromhex("0010002000300040")),
            _tlv(b"\xdf\x22", person.name.encode()),
            _tlv(b"\xdf\x23", person.address.encode()),
            _tlv(b"\xdf\x24", person.birth_date.encode()),
            _tlv(b"\xdf\x25", person.sex.encode()),
        ]))
        hashes = _tlv(b"\xff\x30", _tlv(b"\xdf\x31", hashlib.sha256(number).digest())
                      + _tlv(b"\xdf\x32", hashlib.sha256(four).digest()) + _tlv(b"\xdf\x33", bytes(256)))
        if tamper:  # the data no longer matches the card's hash of it
            four = four.replace("花子".encode(), "華子".encode())
        # Files are longer than their TLV object; the rest is padding.
        self.files = {0x0001: number + b"\xff" * 4, 0x0002: four + b"\xff" * 40, 0x0003: hashes}

    def power_cycle(self) -> None:
        """Power on / reset: nothing selected, nothing verified (tries survive)."""
        self.state.ap_selected, self.state.ef, self.state.verified = False, None, False

    def process(self, apdu: bytes) -> bytes:
        """One command APDU → response APDU."""
        with self.lock:
            self.state.log.append(apdu[:4])
            return self._process(apdu)

    def _process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[5:5 + apdu[4]] if len(apdu) > 5 else b""
        st = self.state
        if cla != 0x00:
            return b"\x6e\x00"
        if ins == 0xA4 and p1 == 0x04:
            st.ap_selected = body == AID
            st.ef, st.verified = None, False
            return OK if st.ap_selected else b"\x6a\x82"
        if ins == 0xA4 and p1 == 0x02:
            fid = int.from_bytes(body, "big") if len(body) == 2 else -1
            if not st.ap_selected or fid not in (*self.files, 0x0011, 0x0015):
                return b"\x6a\x82"
            st.ef = fid
            return OK
        if ins == 0x20:
            return self._verify(body)
        if ins == 0xB0:
            if st.ef not in self.files:
                return b"\x69\x86"
            if not st.verified:
                return b"\x69\x82"
            offset = (p1 << 8) | p2
            le = apdu[4] if len(apdu) == 5 else 0
            data = self.files[st.ef]
            if offset > len(data):
                return b"\x6b\x00"
            return data[offset:offset + (le or 256)] + OK
        return b"\x6d\x00"

    def _verify(self, body: bytes) -> bytes:
        st = self.state
        if st.ef not in (0x0011, 0x0015):
            return b"\x69\x86"
        is_pin = st.ef == 0x0011
        tries = st.pin_tries if is_pin else st.b_tries
        if not body:
            return b"\x69\x84" if tries == 0 else bytes([0x63, 0xC0 | tries])
        if tries == 0:
            return b"\x69\x84"
        secret = (self.person.pin if is_pin else self.person.collation_b).encode()
        if body == secret:
            if is_pin:
                st.pin_tries = 3
            else:
                st.b_tries = 3
            st.verified = True
            return OK
        tries -= 1
        if is_pin:
            st.pin_tries = tries
        else:
            st.b_tries = tries
        return bytes([0x63, 0xC0 | tries])


class OtherCard:
    """An IC card that is not a マイナンバーカード (a library card, say): no 券面事項入力補助AP."""

    def power_cycle(self) -> None:
        """Nothing to forget."""

    def process(self, apdu: bytes) -> bytes:
        """Every SELECT fails; nothing else is supported."""
        return b"\x6a\x82" if apdu[1:2] == b"\xa4" else b"\x6d\x00"


class VpcdEmulator:
    """Listens on two consecutive loopback ports for vpcd: the resident's card in slot 0, another card in slot 1."""

    def __init__(self, card: FictionalCard):
        self.cards: list[FictionalCard | OtherCard] = [card, OtherCard()]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners = self._bind_pair()
        self.port = self._listeners[0].getsockname()[1]

    @staticmethod
    def _bind_pair() -> list[socket.socket]:
        for _ in range(50):
            first = socket.socket()
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            second = socket.socket()
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                first.close()
                second.close()
                continue
            for s in (first, second):
                s.listen(4)
                s.settimeout(0.2)
            return [first, second]
        raise RuntimeError("no two consecutive free ports")

    def start(self) -> None:
        """Serve both slots in background threads."""
        for slot, listener in enumerate(self._listeners):
            thread = threading.Thread(target=self._accept, args=(listener, self.cards[slot]), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop accepting and close the listeners."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for listener in self._listeners:
            listener.close()

    def _accept(self, listener: socket.socket, card: FictionalCard | OtherCard) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn, card), daemon=True).start()

    def _recv(self, conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                return None
            try:
                chunk = conn.recv(n - len(buf))
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket, card: FictionalCard | OtherCard) -> None:
        conn.settimeout(0.2)
        with conn:
            while True:
                head = self._recv(conn, 2)
                if head is None:
                    return
                payload = self._recv(conn, int.from_bytes(head, "big"))
                if payload is None:
                    return
                if len(payload) == 1:
                    if payload[0] in (1, 2):
                        card.power_cycle()
                    if payload[0] == 4:
                        conn.sendall(len(ATR).to_bytes(2, "big") + ATR)
                    continue
                reply = card.process(payload)
                conn.sendall(len(reply).to_bytes(2, "big") + reply)
