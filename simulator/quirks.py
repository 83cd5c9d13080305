"""Gateway quirks by name, the two presets, and the pure id rules some of them need.

A quirk makes the simulator answer the way one real gateway does (reference sections 8-9).
The names are part of the simulator's interface: tests across the project configure them with
`--quirks`, `--accent` or `POST /_sim/config {"quirks": [...]}`. What each quirk changes on
the wire is done by `accents`; this module only names them, so `config` and `store` can use
it without importing the HTTP side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import urllib.parse

QUIRKS: dict[str, str] = {
    "no_variants": "GET /content ignores `variant` and always answers the MP4 (LiteLLM)",
    "litellm_ids": 'ids are "video_" + base64 of LiteLLM\'s routing data; remixes keep the raw '
    "source id in remixed_from_video_id",
    "list_needs_hint": "GET /videos answers 400, before the key is checked, unless the query has "
    "custom_llm_provider=...",
    "no_delete": "DELETE /videos/{id} answers 405",
    "no_models": "GET /models answers 404",
    "no_list": "GET /videos answers 404",
    "no_edits": "POST /videos/edits answers 404",
    "no_extensions": "POST /videos/extensions answers 404",
    "status_aliases": 'status "queued" is sent as "pending", "in_progress" as "processing"',
    "unknown_status": 'status "in_progress" is sent as "unknown"',
    "rfc3339_times": "created_at / completed_at / expires_at as RFC 3339 strings",
    "no_progress": "the progress field is left out",
    "string_errors": "error is a plain string (the message)",
    "content_url": "completed videos carry metadata.url (served without auth under /files/); "
    "/content answers 404",
    "content_400_until_done": '/content before completion answers 400 "Task is not completed yet"',
    "task_ids": 'new ids are "task_" + random',
    "opaque_ids": 'new ids are base64-like with "/", "+", "=" and an "@sim" suffix',
}

ACCENTS: dict[str, tuple[str, ...]] = {
    "litellm": ("no_variants", "litellm_ids", "list_needs_hint", "no_delete"),
    "new-api": (
        "task_ids",
        "no_list",
        "no_delete",
        "no_edits",
        "no_extensions",
        "content_400_until_done",
    ),
}


def parse_quirks(value: object) -> list[str]:
    """A comma string or a list of quirk names (a preset name adds its set), in catalogue order.

    Unknown names raise ValueError, so a typo in a test or on the command line is loud.
    """
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("quirks must be a list or a comma separated string")
    wanted: set[str] = set()
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if name in ACCENTS:
            wanted.update(ACCENTS[name])
        elif name in QUIRKS:
            wanted.add(name)
        else:
            raise ValueError(
                f"unknown quirk {name!r}; known: {', '.join(QUIRKS)} "
                f"(or an accent: {', '.join(ACCENTS)})"
            )
    return [name for name in QUIRKS if name in wanted]


def new_video_id(quirks: list[str]) -> str:
    """The id of a new job: OpenAI's shape unless a quirk asks for another gateway's."""
    if "task_ids" in quirks:
        return "task_" + secrets.token_urlsafe(18)
    if "opaque_ids" in quirks:
        # Standard base64 always has "=" padding for 16 bytes; "/" and "+" are forced in so
        # every id needs percent-encoding in a path, not only an unlucky few.
        chars = list(base64.b64encode(secrets.token_bytes(16)).decode())
        chars[3], chars[7] = "/", "+"
        return "".join(chars) + "@sim"
    return "video_" + secrets.token_hex(16)


LITELLM_PREFIX = "litellm:custom_llm_provider:"


# LiteLLM 1.108 appends the deployment it routed to: a SHA-256 hex of the deployment's config.
LITELLM_DEPLOYMENT = hashlib.sha256(b"simulator deployment").hexdigest()


def encode_litellm(model: str, raw_id: str, provider: str = "openai") -> str:
    """LiteLLM's id for an upstream video: its routing data, base64 encoded (as 1.108 does)."""
    data = (
        f"{LITELLM_PREFIX}{provider};model_id:{model};video_id:{raw_id}"
        f";deployment_id:{LITELLM_DEPLOYMENT}"
    )
    return "video_" + base64.b64encode(data.encode()).decode()


def decode_litellm(video_id: str) -> str | None:
    """The upstream (raw) id inside a LiteLLM id, or None if it is not one."""
    if not video_id.startswith("video_"):
        return None
    try:
        text = base64.b64decode(video_id[len("video_") :], validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    if not text.startswith(LITELLM_PREFIX):
        return None
    _, found, rest = text.partition(";video_id:")
    raw = rest.split(";", 1)[0]  # later parts (deployment_id) follow the raw id
    return raw if found and raw else None


def file_name(video_id: str) -> str:
    """A video id as one path component: opaque ids may hold "/" (and unusual characters)."""
    return urllib.parse.quote(video_id, safe="")
