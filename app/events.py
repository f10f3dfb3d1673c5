"""The vocabulary of visit events (CaseEvent.kind). Metrics and the resident page read these names.

Each event has `at` (UTC), an optional actor and a small `data` dict that never holds personal data.
Timeline of a visit, in the order it usually happens:

- ``arrival``             case created and ticket issued (data: ticket_number)
- ``interview_started``   the counter interview begins (same moment as arrival when opened at the counter)
- ``answers_saved``       answers stored (data: version)
- ``interview_ended``     staff finished the interview and moved to the review screen
- ``signed``              the resident signed once on the tablet
- ``form_printed`` / ``bundle_printed``  PDFs generated (data: instance / forms)
- ``handbook_printed``    the resident's handbook (おくやみハンドブック) was generated (data: steps)
- ``slip_created``        the routing slip was built (data: steps = number of steps)
- ``ticket_called``       the queue called the ticket to a counter (data: counter, queue)
- ``ticket_recalled`` / ``ticket_skipped`` / ``ticket_transferred`` (data: counter, queue, to)
- ``service_started`` / ``service_ended``  a member of staff is with the resident (data: counter, queue)
- ``step_claimed``        a department claimed its step (data: department, step_id)
- ``step_done``           a department finished its step (data: department, step_id)
- ``step_needs_resident`` a department needs the resident in person (data: department, step_id, counter)
- ``step_cancelled``      a step no longer applies (data: department, step_id)
- ``resident_released``   the counter has finished with the resident, the routing slip is out and no
                          department needs them in person: they may leave while the departments work
                          (the phone page and the notices tell them when something needs them or is ready)
- ``satisfaction``        the resident answered the satisfaction question (data: score)
- ``departure``           the visit was closed (data: missed = list of open steps, if any)
"""

from __future__ import annotations

ARRIVAL = "arrival"
INTERVIEW_STARTED = "interview_started"
ANSWERS_SAVED = "answers_saved"
INTERVIEW_ENDED = "interview_ended"
SIGNED = "signed"
FORM_PRINTED = "form_printed"
BUNDLE_PRINTED = "bundle_printed"
HANDBOOK_PRINTED = "handbook_printed"
SLIP_CREATED = "slip_created"
TICKET_CALLED = "ticket_called"
TICKET_RECALLED = "ticket_recalled"
TICKET_SKIPPED = "ticket_skipped"
TICKET_TRANSFERRED = "ticket_transferred"
SERVICE_STARTED = "service_started"
SERVICE_ENDED = "service_ended"
STEP_CLAIMED = "step_claimed"
STEP_DONE = "step_done"
STEP_NEEDS_RESIDENT = "step_needs_resident"
STEP_CANCELLED = "step_cancelled"
RESIDENT_RELEASED = "resident_released"
SATISFACTION = "satisfaction"
DEPARTURE = "departure"
