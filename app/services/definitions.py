"""The form definitions in use by this process, swapped atomically on a successful reload."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from app.errors import ServiceUnavailable
from app.forms.loader import DefinitionError, DefinitionSet, load_definitions

log = logging.getLogger(__name__)


class DefinitionRegistry:
    """Holds the last good DefinitionSet; a broken reload keeps the previous set in use."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._current: DefinitionSet | None = None
        self.last_error: DefinitionError | None = None
        self._lock = threading.Lock()

    def load(self) -> DefinitionSet:
        """Load (or reload) from disk; raises DefinitionError and keeps the old set on failure."""
        with self._lock:
            try:
                defs = load_definitions(self.directory)
            except DefinitionError as exc:
                self.last_error = exc
                log.error("form definitions rejected (%d problems); keeping the previous set", len(exc.problems))
                raise
            self._current = defs
            self.last_error = None
            log.info("form definitions loaded: %d applications, fingerprint %s",
                     len(defs.applications), defs.fingerprint[:12])
            return defs

    @property
    def current(self) -> DefinitionSet:
        """The definitions in use; ServiceUnavailable if none were ever loaded."""
        if self._current is None:
            raise ServiceUnavailable("様式定義が読み込まれていません")
        return self._current

    @property
    def loaded(self) -> bool:
        """Whether a good set is in use."""
        return self._current is not None
