"""The simulator against OpenAI's published OpenAPI document (the Videos part), via schemathesis.

A real simulator process over HTTP; every operation of tests/data/openai-videos-openapi.yml (a
verbatim copy of ../shared/reference/openai-videos-openapi.yml) with generated valid and invalid
input, checking status codes, content types and response schemas. Operations on one video also
run against a seeded completed video, so the 200 answers are checked too, not only the 404s.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from simulator.testing import Simulator, start_simulator

positive_data_acceptance = schemathesis.checks.positive_data_acceptance

DOCUMENT = Path(__file__).parent / "data" / "openai-videos-openapi.yml"
KEY = "sk-schema"
AUTH = {"Authorization": f"Bearer {KEY}"}

# Reference §3: every error is this envelope (any field may be null).
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def document() -> dict[str, Any]:
    raw = yaml.safe_load(DOCUMENT.read_text())
    patched = copy.deepcopy(raw)
    # The document's own gap: it lists only the 200 of each operation, no error answers at all
    # (reference §2: "The spec documents no error responses per path"). Without a `default`
    # every 400/401/404 would fail status_code_conformance; with it, error bodies are checked
    # against the envelope of reference §3 instead of not at all.
    for operations in patched["paths"].values():
        for operation in operations.values():
            operation["responses"]["default"] = {
                "description": "Error",
                "content": {"application/json": {"schema": ERROR_ENVELOPE}},
            }
    # The create and remix bodies are optional to the document (no `required: true`), yet
    # their schemas require `prompt`: a request without a body is not a valid one.
    for path, method in (("/videos", "post"), ("/videos/{video_id}/remix", "post")):
        patched["paths"][path][method]["requestBody"]["required"] = True
    # The spritesheet is a JPEG (reference §2.6: the guide saves it as spritesheet.jpg), a
    # media type the document's content answer leaves out.
    content = patched["paths"]["/videos/{video_id}/content"]["get"]["responses"]["200"]["content"]
    content["image/jpeg"] = {"schema": {"type": "string", "format": "binary"}}
    # OpenAI refuses fields it does not know ("Unrecognized request argument supplied", a
    # 400 unknown_parameter), and so does the simulator; the document leaves the bodies open.
    schemas = patched["components"]["schemas"]
    for name in ("CreateVideoMultipartBody", "CreateVideoRemixBody"):
        schemas[name]["additionalProperties"] = False
    # `model` is an open string in the document (anyOf string | enum, so SDKs accept future
    # ids), while the endpoint renders only the listed models and refuses others with a 400
    # (reference §2.2). Requests are generated from the enum; answers may still name any model.
    listed = {"$ref": "#/components/schemas/VideoModel/anyOf/1"}
    schemas["CreateVideoMultipartBody"]["properties"]["model"] = listed
    return patched


# No extra (undocumented) parameters in negative cases: query strings are open, as OpenAI and the
# gateways treat them (LiteLLM's `custom_llm_provider` is one the document does not list), so
# an unknown query parameter is ignored rather than refused. Unknown body fields are refused
# (see above), which tests/test_simulator.py checks.
CONFIG = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}})
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)

# Rules the document cannot state (its schemas have no cross-field or "exists" constraints), so a
# schema-valid request may still be refused with a 400 naming that field, by operation:
OUTSIDE_THE_DOCUMENT: dict[str, set[str]] = {
    # sora-2 renders only the 720p sizes; input_reference must be a JPEG/PNG/WebP image of
    # exactly the requested size, while the document allows any bytes or an empty object (§2.2).
    "POST /videos": {"size", "input_reference"},
    # `after` is any string to the document; only the id of a listed video is a cursor (§2.3).
    "GET /videos": {"after"},
}


def accepted_unless_outside_the_document(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """positive_data_acceptance, except for a 400 on one of the rules above."""
    if response.status_code == 400 and case.meta is not None:
        param = response.json()["error"]["param"]
        if param in OUTSIDE_THE_DOCUMENT.get(f"{case.method} {case.path}", set()):
            return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture(scope="module")
def schema_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """Its own simulator: thousands of generated jobs stay out of the shared one."""
    sim = start_simulator(
        tmp_path_factory.mktemp("schema-sim"), "--speed", "1000", "--fps", "1", api_key=KEY
    )
    yield sim
    sim.stop()


@schema.parametrize()
@settings(
    max_examples=25,
    database=None,  # no example database in the work tree; each run draws afresh
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_simulator_follows_the_published_document(
    case: schemathesis.Case, schema_simulator: Simulator
) -> None:
    checks: dict[str, Any] = {
        "base_url": schema_simulator.base_url,
        "headers": AUTH,
        "excluded_checks": [positive_data_acceptance],
        "additional_checks": [accepted_unless_outside_the_document],
    }
    case.call_and_validate(**checks)
    if "video_id" in (case.path_parameters or {}):
        # The same request on a video that exists and is completed.
        case.path_parameters = {"video_id": schema_simulator.seed(1)[0]["id"]}
        case.call_and_validate(**checks)
