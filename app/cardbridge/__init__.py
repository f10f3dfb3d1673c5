"""The counter-side card bridge: reads a マイナンバーカード's 券面事項入力補助AP over PC/SC and posts the facts.

A separate small program (`kakanai card-bridge`) that runs on the counter PC with the card reader and
talks to the service only over its public HTTP API, authorised by a one-time pairing code that the
visit's page shows. It never touches the database and never stores or logs the PIN.
"""
