"""Prompts: the provider's length rule, batch splitting, and word-level diffs between versions."""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

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
# Past this many tokens on a side (once the common start and end are set aside) the prompts
# are not diffed word by word: the changed middle is shown as removed and then added text.
# 32,000 characters of ordinary prose are about 11,000 tokens (words, spaces, punctuation).
DIFF_MAX_TOKENS = 12_000
# Splitting at anchors may look at each token this many times over, then stops (the ranges
# left are shown as replaced): the cost stays linear whatever the text.
WORK_FACTOR = 8
# A range this small is diffed exhaustively (difflib, quadratic); bigger ones are split at
# anchors, and one without any is shown as a replacement (and the diff said to be shortened).
SMALL_RANGE = 2_500  # tokens on one side x tokens on the other
TOO_DIFFERENT = (
    "These prompts differ too much to show word by word: the changed part is shown as removed "
    "and added text."
)


@dataclass(frozen=True)
class PromptDiff:
    """("equal"|"insert"|"delete", text) runs, iterable as such by templates; `shortened` says
    that part of it is shown as a whole replacement rather than word by word (TOO_DIFFERENT)."""

    runs: tuple[tuple[str, str], ...]
    shortened: bool = False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def note(self) -> str:
        return TOO_DIFFERENT if self.shortened else ""


def prompt_diff(old: str, new: str) -> PromptDiff:
    """Word-level difference from `old` to `new` as ("equal"|"insert"|"delete", text) runs.

    Whitespace runs are tokens too, so joining the "equal" and "insert" runs gives `new` back
    exactly. The template escapes every run (prompts are user input).

    A patience diff (the common start and end set aside, then the words that occur once on
    each side as anchors, recursively): about linear in the prompts' length, where difflib's
    SequenceMatcher took seconds on two 32,000-character prompts. Past DIFF_MAX_TOKENS the
    middle is not diffed at all, nor a part without anchors or past the work budget, and the
    result says so (`shortened`).
    """
    a, b = WORD_RE.findall(old), WORD_RE.findall(new)
    head = _common_prefix(a, b, 0, len(a), 0, len(b))
    tail = _common_suffix(a, b, head, len(a), head, len(b))
    ahi, bhi = len(a) - tail, len(b) - tail
    blocks = [(0, 0, head), (ahi, bhi, tail)]
    shortened = max(ahi - head, bhi - head) > DIFF_MAX_TOKENS
    if not shortened:
        middle, shortened = _matching_blocks(a, b, head, ahi, head, bhi)
        blocks += middle
    return PromptDiff(tuple(_runs(a, b, blocks)), shortened)


def _common_prefix(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> int:
    n = 0
    while alo + n < ahi and blo + n < bhi and a[alo + n] == b[blo + n]:
        n += 1
    return n


def _common_suffix(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> int:
    n = 0
    while ahi - n > alo and bhi - n > blo and a[ahi - n - 1] == b[bhi - n - 1]:
        n += 1
    return n


# Anchor lengths tried in turn (in tokens: 1 is a word, 5 is three words with their spaces):
# text with a small vocabulary has no word that occurs once, but has short phrases that do.
ANCHOR_LENGTHS = (1, 5, 11)


def _matching_blocks(
    a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int
) -> tuple[list[tuple[int, int, int]], bool]:
    """(i, j, n) blocks with a[i:i+n] == b[j:j+n], and whether a range too big to diff
    exhaustively had no anchor (it is then shown as replaced). A stack, not recursion."""
    blocks: list[tuple[int, int, int]] = []
    gave_up = False
    todo = [(alo, ahi, blo, bhi)]
    budget = WORK_FACTOR * (ahi - alo + bhi - blo)
    while todo:
        alo, ahi, blo, bhi = todo.pop()
        budget -= ahi - alo + bhi - blo
        if budget < 0:
            gave_up = True
            continue
        head = _common_prefix(a, b, alo, ahi, blo, bhi)
        tail = _common_suffix(a, b, alo + head, ahi, blo + head, bhi)
        blocks += [(alo, blo, head), (ahi - tail, bhi - tail, tail)]
        alo, blo, ahi, bhi = alo + head, blo + head, ahi - tail, bhi - tail
        if alo == ahi or blo == bhi:
            continue
        if (ahi - alo) * (bhi - blo) <= SMALL_RANGE:
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            blocks += [(alo + i, blo + j, n) for i, j, n in matcher.get_matching_blocks()]
            continue
        anchors: list[tuple[int, int]] = []
        for length in ANCHOR_LENGTHS:
            anchors = _unique_anchors(a, b, alo, ahi, blo, bhi, length)
            if anchors:
                break
        if not anchors:
            gave_up = True
            continue
        for i, j in anchors:  # the gaps between anchors are diffed in turn
            if i < alo or j < blo:
                continue  # inside the previous anchor's run, grown below
            # Each anchor grows over the equal tokens around it (the spaces and words between
            # two unique words, usually), so only real differences are left as gaps.
            back = _common_suffix(a, b, alo, i, blo, j)
            n = length + _common_prefix(a, b, i + length, ahi, j + length, bhi)
            todo.append((alo, i - back, blo, j - back))
            blocks.append((i - back, j - back, back + n))
            alo, blo = i + n, j + n
        todo.append((alo, ahi, blo, bhi))
    return blocks, gave_up


def _unique_anchors(
    a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int, length: int
) -> list[tuple[int, int]]:
    """Runs of `length` tokens that occur exactly once in a[alo:ahi] and once in b[blo:bhi],
    paired, keeping the longest chain in the same order on both sides (patience sorting),
    without overlaps."""
    # Counter and dict building run in C: this is the diff's inner loop.
    grams_a = list(zip(*(a[alo + k : ahi - length + 1 + k] for k in range(length)), strict=True))
    grams_b = list(zip(*(b[blo + k : bhi - length + 1 + k] for k in range(length)), strict=True))
    count_a, count_b = Counter(grams_a), Counter(grams_b)
    at_a = {gram: i for i, gram in enumerate(grams_a)}  # the last place: for a unique one, its
    at_b = {gram: j for j, gram in enumerate(grams_b)}
    pairs = sorted(
        (alo + at_a[gram], blo + at_b[gram])
        for gram, n in count_a.items()
        if n == 1 and count_b.get(gram) == 1
    )
    # Longest increasing subsequence of the b indexes (pairs are sorted by their a index).
    tops: list[int] = []  # per pile: the b index on top
    top_at: list[int] = []  # per pile: the pair on top
    links: list[int] = []  # per pair: the pair below it in its chain (-1: none)
    for n, (_, j) in enumerate(pairs):
        pile = bisect.bisect_left(tops, j)
        links.append(top_at[pile - 1] if pile else -1)
        if pile == len(tops):
            tops.append(j)
            top_at.append(n)
        else:
            tops[pile], top_at[pile] = j, n
    chain: list[tuple[int, int]] = []
    n = top_at[-1] if top_at else -1
    while n >= 0:
        chain.append(pairs[n])
        n = links[n]
    kept: list[tuple[int, int]] = []
    for i, j in reversed(chain):
        if not kept or (i >= kept[-1][0] + length and j >= kept[-1][1] + length):
            kept.append((i, j))
    return kept


def _runs(a: list[str], b: list[str], blocks: list[tuple[int, int, int]]) -> list[tuple[str, str]]:
    """The runs between and along the matching blocks; neighbours of one kind are merged."""
    runs: list[tuple[str, str]] = []

    def add(op: str, text: str) -> None:
        if not text:
            return
        if runs and runs[-1][0] == op:
            runs[-1] = (op, runs[-1][1] + text)
        else:
            runs.append((op, text))

    i = j = 0
    for bi, bj, n in sorted(block for block in blocks if block[2]) + [(len(a), len(b), 0)]:
        add("delete", "".join(a[i:bi]))
        add("insert", "".join(b[j:bj]))
        add("equal", "".join(b[bj : bj + n]))
        i, j = bi + n, bj + n
    return runs


BATCH_MAX_JOBS = 20  # jobs in one batch, after variations
BATCH_MAX_VARIATIONS = 10
