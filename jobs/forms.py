"""Forms only validate; the services decide."""

from __future__ import annotations

import uuid

from django import forms

from jobs.models import PROMPT_MAX_LENGTH


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
