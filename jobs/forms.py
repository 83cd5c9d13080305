"""Forms only validate; the services decide."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.db.models import QuerySet

from jobs.models import PROMPT_MAX_LENGTH, PROVIDER_ID_LENGTH, SIZES, Provider


class RemixForm(forms.Form):
    # The key is minted when the form is rendered, so a double click or a resubmitted form
    # carries the same key and finds the job the first submission made.
    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "data-maxlength": PROMPT_MAX_LENGTH}),
        strip=False,  # the service normalises; keep what the user typed
        # The service enforces 1..32,000 after normalising line endings; allow a little slack
        # here so CRLF pairs from the browser do not fail a prompt that fits once normalised.
        max_length=PROMPT_MAX_LENGTH * 2,
        error_messages={"required": "Write a prompt: it cannot be empty."},
    )


# === Beyond remix ==============================================================================
# Choices come from the database (the provider's catalog); the services check the combination,
# so a tampered or stale form gets a message rather than a job the provider would refuse.

REFERENCE_ACCEPT = "image/jpeg,image/png,image/webp"


class ProviderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Provider) -> str:  # type: ignore[override]
        return obj.name


class CreateVideoForm(forms.Form):
    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    provider = ProviderChoiceField(queryset=Provider.objects.none(), empty_label=None)
    model = forms.ChoiceField()
    size = forms.ChoiceField()
    seconds = forms.ChoiceField()
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "data-maxlength": PROMPT_MAX_LENGTH}),
        strip=False,
        max_length=PROMPT_MAX_LENGTH * 2,  # see RemixForm: the service counts after normalising
        error_messages={"required": "Write a prompt: it cannot be empty."},
    )
    input_reference = forms.FileField(
        label="Reference image (optional)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": REFERENCE_ACCEPT}),
        help_text="JPEG, PNG or WebP of exactly the chosen size, up to 10 MB; it becomes the "
        "first frame.",
    )

    def __init__(self, *args: Any, providers: QuerySet[Provider], catalog: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = providers  # type: ignore[attr-defined]
        models_, sizes, seconds = set(), set(), set()
        for entry in catalog.values():
            for model, by_size in entry["models"].items():
                models_.add(model)
                for size, spec in by_size.items():
                    sizes.add(size)
                    seconds.update(spec["seconds"])
        # Every value any provider offers: the page's script narrows the menus to what the
        # chosen model allows, and services.submit_create checks the combination again.
        self.fields["model"].choices = [(m, m) for m in sorted(models_)]
        self.fields["size"].choices = [(s, s) for s in SIZES if s in sizes]
        self.fields["seconds"].choices = [
            (s, f"{s} s") for s in sorted(seconds, key=lambda v: (len(v), v))
        ]


class BatchRemixForm(forms.Form):
    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    prompts = forms.CharField(
        label="Prompts, one per line",
        widget=forms.Textarea(attrs={"rows": 8}),
        strip=False,
        max_length=PROMPT_MAX_LENGTH * 4,
        error_messages={"required": "Write at least one prompt, one per line."},
    )
    variations = forms.IntegerField(
        label="Variations of each prompt",
        min_value=1,
        max_value=10,
        initial=1,
        help_text="With N > 1, each line becomes N jobs, with “(variation k of N)” appended.",
    )


class KeyForm(forms.Form):
    """Just the idempotency key: the Retry button."""

    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ImportForm(forms.Form):
    provider = ProviderChoiceField(
        queryset=Provider.objects.filter(enabled=True), empty_label=None
    )
    video_id = forms.CharField(
        label="Provider video id",
        max_length=PROVIDER_ID_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "video_68d7512d07848190b3e45da0ecbebcde"}),
    )


class SyncForm(forms.Form):
    provider = ProviderChoiceField(
        queryset=Provider.objects.filter(enabled=True), empty_label=None
    )
