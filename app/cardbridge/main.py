"""`kakanai card-bridge`: read one マイナンバーカード at the counter and send it to the visit on the tablet.

The clerk starts it with the pairing code the tablet shows (or types it when asked); the resident
types the 4-digit PIN on the counter PC. One wrong PIN and the bridge stops (the card locks after
three): it tells the remaining tries and offers 照合番号B, typed by the clerk from the card face.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict

from app.cardbridge import api_client, kenhojo, reader

log = logging.getLogger("kakanai.cardbridge")

EXIT_OK, EXIT_USAGE, EXIT_SECRET, EXIT_CARD, EXIT_SERVER = 0, 2, 3, 4, 5


def _say(text: str) -> None:
    print(text, flush=True)


def _ask(prompt: str) -> str:
    if sys.stdin.isatty():
        return input(prompt).strip()
    _say(prompt)
    return sys.stdin.readline().strip()


def _ask_secret(prompt: str) -> str:
    # Never echoed, never logged, never stored: it goes to the card and is dropped.
    if sys.stdin.isatty():
        return getpass.getpass(prompt).strip()
    _say(prompt)
    return sys.stdin.readline().strip()


def _ask_collation_b() -> str:
    _say("照合番号Bはカード券面から職員が入力します。")
    birth = _ask_secret("生年月日（西暦の下2桁・月・日の6桁。例 1990年6月15日 → 900615）: ")
    expiry = _ask_secret("有効期限の年（西暦4桁）: ")
    code = _ask_secret("セキュリティコード（4桁）: ")
    return f"{birth}{expiry}{code}"


def _offer_collation_b() -> bool:
    answer = _ask("照合番号B（生年月日・有効期限の年・セキュリティコード）で読み取りますか？ [y/N]: ")
    return answer.lower() in ("y", "yes", "はい")


def _unlock(transmit: kenhojo.Transmit, *, collation_b: bool) -> bool:
    """VERIFY once with the PIN (or 照合番号B); False when the clerk should stop."""
    if not collation_b:
        tries = kenhojo.remaining_tries(transmit)
        if tries == 0:
            _say(str(kenhojo.Locked()))
            if not _offer_collation_b():
                return False
            collation_b = True
        else:
            _say(f"住民の方に券面事項入力補助用の暗証番号（数字4桁）を入力してもらってください（残り{tries}回）。")
            try:
                kenhojo.verify(transmit, _ask_secret("暗証番号: "))
                return True
            except kenhojo.WrongSecret as exc:
                _say(f"{exc}。カードを守るため、これ以上は試しません。")
            except kenhojo.Locked as exc:
                _say(str(exc))
            if not _offer_collation_b():
                return False
    tries = kenhojo.remaining_tries(transmit, collation_b=True)
    if tries == 0:
        _say("照合番号Bもロックされています。マイナンバーカードの窓口で初期化が必要です。")
        return False
    try:
        kenhojo.verify(transmit, _ask_collation_b(), collation_b=True)
    except kenhojo.WrongSecret as exc:
        _say(f"照合番号Bが違います（残り{exc.remaining}回）。券面の表記を確かめてから、もう一度始めてください。")
        return False
    return True


def run(args: argparse.Namespace) -> int:
    """Pair, read the card, post the facts; an exit code per outcome."""
    code = args.code or _ask("タブレットに表示されたペアリングコード: ")
    try:
        info = api_client.check_code(args.server, code)
    except api_client.ApiError as exc:
        _say(str(exc))
        return EXIT_SERVER
    _say(f"ペアリングしました。住所は「{info.get('address_to', '住所')}」に入ります。")
    try:
        with reader.connect(args.reader, wait_seconds=args.wait) as transmit:
            kenhojo.select_ap(transmit)
            if not _unlock(transmit, collation_b=args.collation_b):
                _say("読み取りを中止しました。カードを住民の方にお返しください。")
                return EXIT_SECRET
            facts = kenhojo.read_facts(transmit)
    except kenhojo.CardError as exc:
        _say(str(exc))
        return EXIT_CARD
    try:
        result = api_client.post_reading(args.server, code, asdict(facts))
    except api_client.ApiError as exc:
        _say(str(exc))
        return EXIT_SERVER
    finally:
        del facts
    _say("読み取りました。タブレットで内容を確認してください。")
    for warning in result.get("warnings") or []:
        _say(f"要確認: {warning}")
    return EXIT_OK


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of the card bridge (also mounted as `kakanai card-bridge`)."""
    parser = parser or argparse.ArgumentParser(prog="kakanai card-bridge", description=__doc__)
    parser.add_argument("--server", required=True, help="the service's base URL, e.g. https://kakanai.city.example")
    parser.add_argument("--code", default=None, help="the pairing code the tablet shows (asked for when left out)")
    parser.add_argument("--reader", default=None, help="use the reader whose name contains this text")
    parser.add_argument("--collation-b", action="store_true", help="unlock with 照合番号B (cards without a PIN)")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a card (default 30)")
    parser.add_argument("--verbose", action="store_true", help="trace the APDUs (never their data)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point when run as `python -m app.cardbridge.main`."""
    args = build_parser().parse_args(argv)
    return run_with_logging(args)


def run_with_logging(args: argparse.Namespace) -> int:
    """Set up logging (stderr) and run."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
