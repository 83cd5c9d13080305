"""Which fault (if any) an API request gets: scripted faults first, then random ones."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from .config import CONTENT_ONLY_FAULTS, FAULT_KINDS, POST_ONLY_FAULTS, ConfigError, Settings


@dataclass
class ScriptedFault:
    fault: str
    remaining: int
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str, creates: bool, content: bool = False) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None and self.path not in path:
            return False
        # accept_then_* / create_then_500 need a request that creates a job, truncate a content
        # download; each waits for one instead of being wasted on a request that happens to match.
        return applies(self.fault, creates, content)

    def as_dict(self) -> dict[str, object]:
        return {
            "fault": self.fault,
            "remaining": self.remaining,
            "method": self.method,
            "path": self.path,
        }


def applies(fault: str, creates: bool, content: bool) -> bool:
    """Whether `fault` can be done to a request (a create, a content download, or neither)."""
    if fault in POST_ONLY_FAULTS:
        return creates
    if fault in CONTENT_ONLY_FAULTS:
        return content
    return True


class FaultInjector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._scripted: list[ScriptedFault] = []

    def script(
        self, fault: str, count: int = 1, method: str | None = None, path: str | None = None
    ) -> ScriptedFault:
        if fault not in FAULT_KINDS:
            raise ConfigError(f"unknown fault {fault!r}; known: {', '.join(FAULT_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError("count must be a positive integer")
        item = ScriptedFault(fault, count, method.upper() if method else None, path or None)
        with self._lock:
            self._scripted.append(item)
        return item

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [item.as_dict() for item in self._scripted]

    def clear(self) -> None:
        with self._lock:
            self._scripted.clear()

    def delay(self) -> None:
        """The `latency` setting: every API answer takes this long, faulted or not."""
        latency = self.settings.latency
        if latency > 0:
            time.sleep(latency)

    def pick(self, method: str, path: str, creates: bool, content: bool = False) -> str | None:
        """The fault for this request, consuming one use of the first matching scripted fault.

        `creates` is true for POST create/remix, the only requests accept_then_* and
        create_then_500 apply to; `content` for GET content, the only ones truncate applies to.
        """
        with self._lock:
            for item in self._scripted:
                if item.matches(method, path, creates, content):
                    item.remaining -= 1
                    if item.remaining <= 0:
                        self._scripted.remove(item)
                    return item.fault
        rate = self.settings.fault_rate
        if rate <= 0 or random.random() >= rate:
            return None
        kinds = [k for k in self.settings.faults if applies(k, creates, content)]
        return random.choice(kinds) if kinds else None
