"""The audit log: who read or changed which case's personal data, downloaded which PDF, signed in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models import AuditEntry, User

# Actions written to the log (AuditEntry.action).
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
CASE_READ = "case_read"
CASE_CREATED = "case_created"
CASE_UPDATED = "case_updated"
PDF_DOWNLOAD = "pdf_download"
SIGNATURE_SAVED = "signature_saved"
DEPARTMENT_FETCH = "department_fetch"
STEP_UPDATED = "step_updated"
EXPORT = "export"
PURGE = "purge"


@dataclass(frozen=True)
class Client:
    """Where a request came from (address and user agent), as far as the app can tell."""

    ip: str = ""
    user_agent: str = ""


def record(
    session: Session, *, action: str, actor: User | None = None, actor_name: str = "", case_id: str | None = None,
    target: str = "", outcome: str = "ok", client: Client | None = None,
) -> AuditEntry:
    """Append one entry; `target` names the thing touched (a PDF, a step), never personal data."""
    client = client or Client()
    entry = AuditEntry(
        action=action, actor_id=actor.id if actor else None, actor=(actor.username if actor else actor_name)[:64],
        case_id=case_id, target=target[:200], outcome=outcome[:20], ip=client.ip[:64],
        user_agent=client.user_agent[:200],
    )
    session.add(entry)
    return entry
