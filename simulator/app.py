"""The state every request shares: settings, the store, counters, faults, media, webhooks."""

from __future__ import annotations

from .config import Settings
from .faults import FaultInjector
from .media import MediaLibrary
from .stats import Stats
from .store import Store
from .webhooks import WebhookDispatcher


class App:
    """Everything the request handlers share."""

    def __init__(self, settings: Settings, store: Store, verbose: bool = False) -> None:
        self.settings = settings
        self.store = store
        self.verbose = verbose
        self.stats = Stats()
        self.faults = FaultInjector(settings)
        self.media = MediaLibrary(store.media_dir)
        self.webhooks = WebhookDispatcher(store, settings, self.stats)

    def reset(self) -> None:
        self.store.reset()
        self.media.forget()
        self.stats.reset()
        self.faults.clear()
