"""Prompts: the provider's length rule, batch splitting, and word-level diffs between versions."""

from __future__ import annotations

import difflib
import re

from django.core.exceptions import ValidationError

# Defined once, with the other Video field bounds, where the provider client checks answers.
from jobs.provider.fields import PROMPT_MAX_LENGTH as PROMPT_MAX_LENGTH


def clean_prompt(prompt: str) -> str:
    """Normalise line endings and check the provider's 1..32,000 character rule."""
    prompt = prompt.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in prompt:
        raise ValidationError({"prompt": "The prompt contains a NUL character; remove it."})
    if not prompt.strip():
        raise ValidationError({"prompt": "Write a prompt: it cannot be empty."})
    if len(prompt) > PROMPT_MAX_LENGTH:
        raise ValidationError(
            {
                "prompt": f"The prompt is {len(prompt):,} characters; the limit is "
                f"{PROMPT_MAX_LENGTH:,}."
            }
        )
    return prompt


def batch_prompts(text: str, variations: int = 1) -> list[str]:
    """One prompt per non-blank line; with N > 1 variations each line becomes N jobs.

    The Videos API has no seed or `n`, so N identical prompts would be N indistinguishable
    requests: each variation gets " (variation k of N)" appended, which nudges the model to
    differ and keeps the jobs apart in the table.
    """
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if variations <= 1:
        return lines
    return [
        f"{line} (variation {k} of {variations})"
        for line in lines
        for k in range(1, variations + 1)
    ]


# Words, runs of punctuation and runs of whitespace are separate tokens, so "watercolour" and
# "watercolour," share the word and differ only by the comma.
WORD_RE = re.compile(r"\s+|\w+|[^\w\s]+")


def prompt_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Word-level difference from `old` to `new` as ("equal"|"insert"|"delete", text) runs.

    Whitespace runs are tokens too, so joining the "equal" and "insert" runs gives `new` back
    exactly. The template escapes every run (prompts are user input).
    """
    a, b = WORD_RE.findall(old), WORD_RE.findall(new)
    runs: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(b[j1:j2])))
            continue
        if op in ("delete", "replace"):
            runs.append(("delete", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            runs.append(("insert", "".join(b[j1:j2])))
    return [run for run in runs if run[1]]


BATCH_MAX_JOBS = 20  # jobs in one batch, after variations
BATCH_MAX_VARIATIONS = 10
