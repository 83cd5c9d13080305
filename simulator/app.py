"""The state every request shares: settings, the store, counters, faults, media, webhooks."""

from __future__ import annotations

from .config import Settings
from .faults import FaultInjector
from .media import MediaLibrary
from .openrouter_webhooks import OpenRouterWebhooks
from .stats import Stats
from .store import Store
from .webhooks import WebhookDispatcher


class App:
    """Everything the request handlers share."""

    def __init__(
        self, settings: Settings, store: Store, verbose: bool = False, dialect: str = "openai"
    ) -> None:
        self.settings = settings
        self.dialect = dialect  # "openai" (/v1) or "openrouter" (/api/v1), fixed at start
        self.store = store
        self.verbose = verbose
        self.stats = Stats()
        self.faults = FaultInjector(settings)
        self.media = MediaLibrary(store.media_dir)
        self.webhooks: WebhookDispatcher | OpenRouterWebhooks = (
            OpenRouterWebhooks(store, settings, self.stats)
            if dialect == "openrouter"
            else WebhookDispatcher(store, settings, self.stats)
        )
        # reset() goes back to the quirks given on the command line (none by default).
        self.startup_quirks = list(settings.quirks)

    def reset(self) -> None:
        self.store.reset()
        self.media.forget()
        self.stats.reset()
        self.faults.clear()
        if isinstance(self.webhooks, OpenRouterWebhooks):
            self.webhooks.forget()  # its deliveries wait in memory, not in the store
        self.settings.update({"quirks": self.startup_quirks})
