from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Video jobs"

    def ready(self) -> None:
        from jobs import auth  # noqa: F401  (connects the login-throttling signal receivers)
