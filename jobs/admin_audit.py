"""Admin for the audit log and the teams' outbound notifications (jobs/admin.py imports it).

The audit log and the deliveries are read-only here: they record what happened. Changes made
through the admin to budgets and providers are themselves audited (AuditedAdmin).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from jobs.models import AuditEvent, NotificationTarget, OutboundAttempt, OutboundDelivery
from jobs.services.audit import record
from jobs.services.outbound import private_refusal, try_again, url_refusal


def _shown(value: Any) -> str:
    return str(value if value is not None else "")[:200]


class AuditedAdmin(admin.ModelAdmin):
    """Records an AuditEvent (`audit_action`) for every add, change and delete made here."""

    audit_action: str = ""

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        # Here rather than in save_model: the inlines (a provider's catalog) are saved too.
        fields = {
            name: [_shown(form.initial.get(name)), _shown(form.cleaned_data.get(name))]
            for name in form.changed_data
        }
        inlines = any(isinstance(f, BaseInlineFormSet) and f.has_changed() for f in formsets)
        if not change or fields or inlines:
            detail: dict[str, Any] = {"added": not change, "fields": fields}
            if inlines:
                detail["inlines_changed"] = True
            record(request.user, self.audit_action, form.instance, **detail)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        record(request.user, self.audit_action, obj, deleted=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            record(request.user, self.audit_action, obj, deleted=True)
        super().delete_queryset(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "target_type", "target_id", "target_repr"]
    list_filter = ["action", "target_type", "at"]
    list_select_related = ["actor"]
    search_fields = ["target_repr", "target_id", "actor__username"]
    date_hierarchy = "at"


class NotificationTargetForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in NotificationTarget.EVENTS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every event.",
    )

    class Meta:
        model = NotificationTarget
        fields = ["team", "kind", "url", "events", "enabled", "allow_private"]
        help_texts = {
            "url": "An http:// or https:// address. It must resolve to public addresses only, "
            "unless “allow private” is ticked (for a receiver inside your own network).",
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = data.get("url")
        if url:
            refusal = url_refusal(url) or (
                "" if data.get("allow_private") else private_refusal(url)
            )
            if refusal:
                self.add_error("url", refusal)
        return data


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    form = NotificationTargetForm
    list_display = ["team", "kind", "url", "events", "enabled", "allow_private"]
    list_filter = ["kind", "enabled", "allow_private", "team"]
    list_select_related = ["team"]
    search_fields = ["url", "team__name"]
    readonly_fields = ["secret", "created_at"]
    fieldsets = [
        (None, {"fields": ["team", "kind", "url", "events", "enabled", "allow_private"]}),
        (
            "Signing (generic webhooks)",
            {
                "fields": ["secret", "created_at"],
                "description": "Give this secret to the receiving team: they verify each "
                "delivery's webhook-signature with it (Standard Webhooks).",
            },
        ),
    ]


class OutboundAttemptInline(admin.TabularInline):
    """Every try of the delivery, oldest first: the record of what each target answered."""

    model = OutboundAttempt
    fields = readonly_fields = ("number", "at", "took_ms", "sent", "status", "error")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(ReadOnlyAdmin):
    inlines = [OutboundAttemptInline]
    list_display = [
        "created_at",
        "event",
        "target",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "sent_at",
        "short_error",
    ]
    list_filter = ["state", "event", "target__kind", "target__team"]
    list_select_related = ["target__team"]
    search_fields = ["message_id", "last_error"]
    date_hierarchy = "created_at"
    actions = ["send_again"]

    @admin.display(description="last error")
    def short_error(self, obj: OutboundDelivery) -> str:
        return obj.last_error[:120]

    @admin.action(description="Try again now (from the first attempt)")
    def send_again(self, request: HttpRequest, queryset: QuerySet[OutboundDelivery]) -> None:
        count = try_again(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} deliveries will be sent again.", messages.SUCCESS)
