"""Gateway ids that carry routing data: LiteLLM's, decoded to find the upstream's own id.

LiteLLM rewrites every id into "video_" + standard base64 (with "/", "+", "=") of
"litellm:custom_llm_provider:<p>;model_id:<m>;video_id:<raw>", and LiteLLM 1.108 adds
";deployment_id:<hex>" (and may add served_model, requested_model) (BerriAI/litellm
`litellm/types/videos/utils.py`). A remix it answers names its source by the upstream's raw id,
so lineage can only be linked by decoding the ids we hold. Ids stay opaque everywhere else.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final

from jobs.provider.fields import ID_MAX_LENGTH

PREFIX: Final = "video_"
_MARKER: Final = "litellm:"
_KEYS: Final = ("custom_llm_provider", "model_id", "video_id")
# Parts that follow the three above in newer releases; kept, so a source id re-wrapped for the
# same upstream routes the way the remix's own id does.
_OPTIONAL_KEYS: Final = ("deployment_id", "served_model", "requested_model")


@dataclass(frozen=True, slots=True)
class LitellmId:
    provider: str  # custom_llm_provider, e.g. "openai"
    model_id: str
    raw: str  # the upstream's own id
    deployment_id: str = ""


def decode_litellm(video_id: str) -> LitellmId | None:
    """The parts of a LiteLLM id, or None when `video_id` is not one (most ids are not)."""
    if not isinstance(video_id, str) or not video_id.startswith(PREFIX):
        return None
    if len(video_id) > ID_MAX_LENGTH:
        return None
    encoded = video_id[len(PREFIX) :]
    try:
        # validate=True: an ordinary "video_abc123" id is not silently read as base64 noise.
        text = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    if not text.startswith(_MARKER):
        return None
    parts: dict[str, str] = {}
    for item in text[len(_MARKER) :].split(";"):
        key, sep, value = item.partition(":")
        if not sep or key not in (*_KEYS, *_OPTIONAL_KEYS) or key in parts:
            return None
        parts[key] = value
    raw = parts.get("video_id", "")
    if not raw or "\x00" in text or not set(_KEYS) <= set(parts):
        return None
    return LitellmId(
        provider=parts["custom_llm_provider"],
        model_id=parts["model_id"],
        raw=raw,
        deployment_id=parts.get("deployment_id", ""),
    )


def encode_litellm(provider: str, model_id: str, raw: str, deployment_id: str = "") -> str:
    """The id LiteLLM would answer for upstream id `raw` (the inverse of `decode_litellm`)."""
    text = f"{_MARKER}custom_llm_provider:{provider};model_id:{model_id};video_id:{raw}"
    if deployment_id:
        text += f";deployment_id:{deployment_id}"
    return PREFIX + base64.b64encode(text.encode()).decode()
