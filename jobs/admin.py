"""Admin: providers with their catalog, videos with history. Actions call services only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from jobs.admin_audit import AuditedAdmin
from jobs.lib.paging import BoundedPaginator
from jobs.models import (
    AuditEvent,
    Batch,
    Budget,
    CatalogEntry,
    Charge,
    Provider,
    StatusChange,
    Video,
    WebhookDelivery,
)
from jobs.services import catalog, manage
from jobs.services.imports import sync_provider


def staff(request: HttpRequest) -> User:
    """The admin only serves logged-in staff."""
    assert isinstance(request.user, User)
    return request.user


class CatalogInline(admin.TabularInline):
    model = CatalogEntry
    extra = 0


@admin.register(Provider)
class ProviderAdmin(AuditedAdmin):
    audit_action = AuditEvent.Action.PROVIDER_CHANGED
    list_display = [
        "name",
        "dialect",
        "base_url",
        "api_key_env",
        "can_create",
        "can_remix",
        "can_edit",
        "can_extend",
        "can_list",
        "can_cancel",
        "can_delete",
        "serves_variants",
        "honours_idempotency",
        "webhooks_enabled",
        "enabled",
        "is_default",
        "key_present",
        "checked_at",
    ]
    list_filter = [
        "enabled",
        "dialect",
        "can_remix",
        "can_create",
        "can_edit",
        "can_extend",
        "can_cancel",
        "can_delete",
        "serves_variants",
        "honours_idempotency",
        "webhooks_enabled",
    ]
    search_fields = ["name", "base_url"]
    readonly_fields = ["checked_at", "last_check"]
    fieldsets = [
        (None, {"fields": ["name", "dialect", "base_url", "api_key_env", "enabled", "is_default"]}),
        (
            "What it can do",
            {
                "fields": [
                    "can_create",
                    "can_remix",
                    "can_edit",
                    "can_extend",
                    "can_list",
                    "routing_hint",
                    "can_cancel",
                    "can_delete",
                    "serves_variants",
                    "honours_idempotency",
                ],
                "description": "“Check connection” finds out most of these without a paid job; "
                "“Apply what the last check found” then sets them.",
            },
        ),
        ("Webhooks", {"fields": ["webhooks_enabled", "webhook_secret_env"]}),
        ("Last check", {"fields": ["checked_at", "last_check"]}),
    ]
    inlines = [CatalogInline]
    actions = ["check_connection", "apply_check", "fill_catalog", "sync_now"]

    @admin.display(boolean=True, description="key set")
    def key_present(self, obj: Provider) -> bool:
        return bool(obj.api_key)  # whether it is set, never the key itself

    @admin.display(description="what the last check found")
    def last_check(self, obj: Provider) -> str:
        if not obj.check_report:
            return "Not checked yet: use the action “Check connection”."
        # Escaped by format_html_join; one finding per line.
        return format_html_join(
            "", "<div>{}</div>", ((line,) for line in obj.check_report.splitlines())
        )

    @admin.action(description="Check connection (Videos API, key, what works; nothing paid)")
    def check_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            level, text = manage.check_provider(provider=provider)
            self.message_user(request, f"{provider}: {text}", level)
            for finding_level, line in manage.check_findings(provider):
                self.message_user(request, f"{provider} · {line}", finding_level)

    @admin.action(
        description="Apply what the last check found (sets list, remix, edit, extend, delete "
        "and thumbnails from the stored check)"
    )
    def apply_check(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            level, text = manage.apply_check(provider=provider)
            self.message_user(request, f"{provider}: {text}", level)

    @admin.action(description="Fill the catalog from the provider's model list")
    def fill_catalog(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            try:
                result = catalog.fill_catalog(provider=provider)
            except ValidationError as exc:
                self.message_user(request, f"{provider}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{provider}: {result}")

    @admin.action(description="Sync jobs from provider (import what is missing)")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            try:  # sync_provider words the refusals (can_list off, HTTP 400)
                result = sync_provider(provider=provider)
            except ValidationError as exc:
                self.message_user(request, f"{provider}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{provider}: {result.seen} jobs seen, {result.new} imported."
                )


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["at", "from_status", "to_status", "progress", "via", "note"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


PROVIDER_OWNED = [
    "video_id",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error_code",
    "error_message",
]


class CatalogModelFilter(admin.SimpleListFilter):
    """By model, offering the catalogs' models: a plain `model` filter runs SELECT DISTINCT
    over every video on each changelist load."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        models = CatalogEntry.objects.order_by("model").values_list("model", flat=True)
        return [(m, m) for m in models.distinct()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Video]) -> QuerySet[Video]:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "short_prompt",
        "model",
        "status",
        "progress",
        "submission",
        "asset_state",
        "owner",
        "provider",
        "requested_at",
    ]
    # No date_hierarchy: its year/month links are a SELECT DISTINCT over every row's date (1.5 s
    # of SQL at 100,000 videos); the date filter's fixed ranges cost no query.
    list_filter = [
        "status",
        "submission",
        "asset_state",
        CatalogModelFilter,
        "provider",
        "owner",
        ("requested_at", admin.DateFieldListFilter),
    ]
    search_fields = ["video_id", "prompt", "remixed_from_video_id", "owner__username"]
    list_select_related = ["owner", "provider"]
    # Counted up to 10,000 rows ("10,000+", templates/admin/jobs/video/pagination.html), and
    # no second COUNT(*) of the whole table for "n of N selected".
    paginator = BoundedPaginator
    show_full_result_count = False
    readonly_fields = [
        *PROVIDER_OWNED,
        "idempotency_key",
        "submission",
        "submit_attempts",
        "sent_at",
        "last_polled_at",
        "poll_errors",
        "last_error",
        "archived_at",
        "requested_at",
        "updated_at",
    ]
    # Ids, not <select>s: a menu of every video was 7.3 MB on the change page at 100,000 rows.
    raw_id_fields = ["source", "retry_of", "owner", "batch"]
    inlines = [StatusChangeInline]
    actions = ["refresh_now", "archive_again", "delete_at_provider"]

    @admin.display(description="prompt")
    def short_prompt(self, obj: Video) -> str:
        return format_html("{}", obj.prompt[:60] + ("…" if len(obj.prompt) > 60 else ""))

    @admin.action(description="Refresh now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        for video in queryset:
            manage.refresh_now(video_id=video.pk)
        self.message_user(request, f"{queryset.count()} videos will be refreshed now.")

    @admin.action(description="Archive again")
    def archive_again(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        for video in queryset.filter(status=Video.Status.COMPLETED):
            manage.rearchive(video_id=video.pk)
        self.message_user(request, "Completed videos will be downloaded again.")

    @admin.action(description="Delete at provider (and here)")
    def delete_at_provider(self, request: HttpRequest, queryset: QuerySet[Video]) -> None:
        for video in queryset.select_related("provider"):
            try:
                manage.delete_video(video=video, user=staff(request))
            except ValidationError as exc:
                self.message_user(request, f"{video}: {' '.join(exc.messages)}", messages.ERROR)


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ["video", "from_status", "to_status", "progress", "via", "at"]
    list_filter = ["to_status", "via"]
    list_select_related = ["video"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "event_type", "video_id", "provider", "received_at"]
    list_filter = ["event_type", "provider"]


admin.site.register(Batch)


# --- budgets ------------------------------------------------------------------------------------


@admin.register(Budget)
class BudgetAdmin(AuditedAdmin):
    audit_action = AuditEvent.Action.BUDGET_CHANGED
    list_display = ["__str__", "user", "group", "monthly_limit"]
    list_editable = ["monthly_limit"]
    list_select_related = ["user", "group"]
    raw_id_fields = ["user"]
    search_fields = ["user__username", "group__name"]


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    """The spend ledger: read-only, so usage and budgets cannot be edited away."""

    list_display = ["at", "owner", "amount", "basis", "provider_name", "model", "video"]
    list_filter = ["basis", "provider_name", "model"]
    list_select_related = ["owner", "video"]
    search_fields = ["owner__username", "prompt"]
    date_hierarchy = "at"
    raw_id_fields = ["video", "owner"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
