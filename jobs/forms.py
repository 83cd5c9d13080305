"""Forms only validate; the services decide."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.db.models import QuerySet

from jobs.lib.images import REFERENCE_ACCEPT, REFERENCE_MAX_MB
from jobs.lib.prompts import BATCH_MAX_VARIATIONS, PROMPT_MAX_LENGTH
from jobs.models import PROVIDER_ID_LENGTH, SIZES, Provider

if TYPE_CHECKING:
    from jobs.selectors import CreateMenu


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
    # Shown once an unchanged prompt was refused: the same video again costs the same again.
    submit_unchanged = forms.BooleanField(
        label="Submit anyway: I want the same prompt again", required=False
    )

    def __init__(self, *args: Any, source_prompt: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_prompt = source_prompt

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        prompt = data.get("prompt")
        if prompt is not None and not data.get("submit_unchanged"):
            if _same_prompt(prompt, self.source_prompt):  # the same video again, paid again
                raise forms.ValidationError(UNCHANGED_WARNING, code="unchanged")
        return data


UNCHANGED_WARNING = (
    "The prompt is the same as the source's, so this remix would pay for another take of the "
    "same video. Change the prompt, or tick “Submit anyway” if that is what you want."
)


def _same_prompt(a: str, b: str) -> bool:
    """Equal but for line endings and outer white space (what clean_prompt normalises)."""

    def norm(text: str) -> str:
        return text.replace("\r\n", "\n").replace("\r", "\n").strip()

    return norm(a) == norm(b)


class EditForm(forms.Form):
    """An edit (or, with seconds, an extension) of a completed video: what to change or add."""

    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)  # see RemixForm
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "data-maxlength": PROMPT_MAX_LENGTH}),
        strip=False,
        max_length=PROMPT_MAX_LENGTH * 2,  # see RemixForm: the service counts after normalising
        error_messages={"required": "Write a prompt: it cannot be empty."},
    )


class ExtendForm(EditForm):
    # The lengths and their prices come from the view (selectors.extension_lengths); the
    # service checks the value again, so a stale or tampered form gets words, not a job.
    seconds = forms.ChoiceField(
        label="Seconds to add",
        error_messages={"invalid_choice": "Pick how many seconds to add from the list."},
    )

    def __init__(self, *args: Any, lengths: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["seconds"]).choices = lengths


class RetryForm(forms.Form):
    """Retry a failed job, with its prompt pre-filled and editable."""

    key = forms.UUIDField(widget=forms.HiddenInput)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "data-maxlength": PROMPT_MAX_LENGTH}),
        strip=False,
        max_length=PROMPT_MAX_LENGTH * 2,  # see RemixForm: the service counts after normalising
        required=False,  # the one-click Retry button sends none: the failed job's prompt
    )


# Choices come from the database (the provider's catalog); the services check the combination,
# so a tampered or stale form gets a message rather than a job the provider would refuse.


class ProviderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Provider) -> str:
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
        help_text=f"JPEG, PNG or WebP of exactly the chosen size, up to {REFERENCE_MAX_MB} MB; it "
        "becomes the first frame.",
    )

    def __init__(
        self,
        *args: Any,
        providers: QuerySet[Provider],
        catalog: dict[str, dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = providers  # type: ignore[attr-defined]
        models_, sizes, seconds = set(), set(), set()
        for entry in catalog.values():
            for model, by_size in entry["models"].items():
                models_.add(model)
                for size, spec in by_size.items():
                    sizes.add(size)
                    seconds.update(spec["seconds"])
        # Every value any provider offers is valid input: show_menu narrows what the menus
        # display to what the chosen model allows, and submit_create checks the combination.
        self._menu("model").choices = [(m, m) for m in sorted(models_)]
        self._menu("size").choices = [(s, s) for s in SIZES if s in sizes]
        self._menu("seconds").choices = [
            (s, f"{s} s") for s in sorted(seconds, key=lambda v: (len(v), v))
        ]

    def _menu(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field

    def show_menu(self, menu: CreateMenu) -> None:
        """Display only what fits the current choice, with it selected."""
        # The widget's choices only: the field still accepts every catalog value (see above).
        for name, values in (("model", menu.models), ("size", menu.sizes)):
            cast(forms.Select, self.fields[name].widget).choices = [(v, v) for v in values]
        widget = cast(forms.Select, self.fields["seconds"].widget)
        widget.choices = [(s, f"{s} s") for s in menu.lengths]
        if not self.is_bound:
            self.initial.update(
                provider=menu.provider, model=menu.model, size=menu.size, seconds=menu.seconds
            )


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
        max_value=BATCH_MAX_VARIATIONS,
        initial=1,
        help_text="With N > 1, each line becomes N jobs, with “(variation k of N)” appended.",
    )


class KeyForm(forms.Form):
    """Just the idempotency key: "retry all failed" and the like."""

    key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ImportForm(forms.Form):
    provider = ProviderChoiceField(queryset=Provider.objects.filter(enabled=True), empty_label=None)
    video_id = forms.CharField(
        label="Provider video id",
        max_length=PROVIDER_ID_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "video_68d7512d07848190b3e45da0ecbebcde"}),
    )


class SyncForm(forms.Form):
    provider = ProviderChoiceField(queryset=Provider.objects.filter(enabled=True), empty_label=None)
