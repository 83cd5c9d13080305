"""The connection check: is this a Videos API, is the key accepted, and what does it offer?

Found without ever creating a paid job: every probe is a request a server must refuse (an
empty body, an id that does not exist), and what matters is how it refuses. A route that
exists refuses with 400/422, or 404 in the API's JSON error envelope ("no such video"); a
route that does not exist answers 404 without an envelope (a framework's page), OpenAI's
"Invalid URL" envelope, or 405. A 401/403 or a 5xx tells nothing about a route, and then the
finding says "could not tell" (`works=None`) rather than guess. The key is judged by
`GET /models` (200 accepted, 401/403 refused; OpenRouter's catalog is public, so not there)
and by a retrieve of a random id (404 in the envelope: accepted), never by the list: LiteLLM
answers 400 there for any key.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote

from jobs.provider import dialects
from jobs.provider.deadline import deadline as deadline_guard
from jobs.provider.dialects import OPENROUTER, OPENROUTER_LACKS
from jobs.provider.errors import (
    NO_VIDEOS_API_MESSAGE,
    ROUTE_MODELS,
    ROUTE_VIDEO_MODELS,
    NoVideosApi,
    ProviderError,
    ProviderUnavailable,
    error_envelope,
    read_limited,
)
from jobs.provider.schema import ConnectionReport, Finding, ModelInfo, RemoteVideo, parse_page
from jobs.provider.transport import Transport


class ProviderClient(Protocol):
    """What the probes use of `client.ProviderClient` (named here: that module imports this)."""

    _http: Transport
    dialect: str
    routing_hint: str
    json_max_bytes: int
    list_max_bytes: int

    def list_params(self, *, limit: int, order: str = "desc") -> dict[str, str | int]: ...


# Finding -> the Provider flag it verifies.
SUGGESTS: Final = {
    "list": "can_list",
    "remix": "can_remix",
    "edit": "can_edit",
    "extend": "can_extend",
    "delete": "can_delete",
    "variants": "serves_variants",
}
IMAGE_VARIANT: Final = "thumbnail"
# Error types (or codes) that mean "this key", seen from OpenAI, LiteLLM and gateways.
KEY_REFUSAL_TYPES: Final = (
    "invalid_api_key",
    "authentication",
    "no_db_connection",
    "invalid_key",
    "unauthorized",
)


@dataclass(frozen=True, slots=True)
class Answer:
    """How the provider answered one probe; `status` None: no answer at all (`problem` says)."""

    method: str
    route: str
    status: int | None
    content_type: str = ""
    envelope: dict[str, str | None] | None = None
    data: Any = None  # the JSON of a 2xx answer, when it was one and was read
    problem: str = ""

    @property
    def asked(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def said(self) -> str:
        """ "HTTP 404: No video found" / "no answer: …": what came back, for the words."""
        if self.status is None:
            return f"no answer: {self.problem}"
        message = (self.envelope or {}).get("message") or ""
        return f"HTTP {self.status}: {message[:200]}" if message else f"HTTP {self.status}"

    @property
    def api_error(self) -> bool:
        """The API's own error envelope, not OpenAI's "Invalid URL" for a route it lacks."""
        message = (self.envelope or {}).get("message") or ""
        return self.envelope is not None and not message.startswith("Invalid URL")

    @property
    def refuses_the_key(self) -> bool:
        """An error whose type says the key was the problem, whatever the status: LiteLLM
        without a database answers any key but its master key with 400 "no_db_connection"."""
        if self.status is None or self.status < 400 or self.envelope is None:
            return False
        kind = f"{self.envelope.get('type') or ''} {self.envelope.get('code') or ''}".lower()
        return any(word in kind for word in KEY_REFUSAL_TYPES)

    def route_exists(self, *, by_id: bool) -> bool | None:
        """Does the route exist? `by_id`: the path held a random id, so a 404 in the API's
        envelope is "no such video" (the route is there); for a body-only route (edits,
        extensions, create) with an empty body there is nothing to not find, so any 404 is
        a missing route."""
        status = self.status
        if status is None or status in (401, 403) or status >= 500 or status == 429:
            return None
        if 200 <= status < 300:
            return True
        if status == 404:
            return by_id and self.api_error
        if status == 405:
            return False
        if 400 <= status < 500:
            return True if self.api_error else None
        return None


def ask(
    client: ProviderClient,
    method: str,
    route: str,
    *,
    path: str | None = None,
    params: dict[str, str | int] | None = None,
    body: Any = None,
    read: bool = True,
    cap: int | None = None,
) -> Answer:
    """Send one probe and see how it was answered, whatever the status (nothing raised)."""
    http = client._http  # the probes share the client's session, key and bounds
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
    with deadline_guard(http.deadline) as guard:
        try:
            response = http.send(
                method,
                route,
                http.base_url + (path or route),
                guard,
                params=params,
                json=body,
                headers=headers,
            )
        except ProviderError as exc:
            return Answer(method, route, None, problem=exc.message)
        with response:
            content_type = response.headers.get("Content-Type", "")
            if not read:  # a variant: the status and type say it all; never the bytes
                return Answer(method, route, response.status_code, content_type)
            try:
                with http.translated(method, route, guard):
                    raw = read_limited(response, cap or client.json_max_bytes)
            except ProviderError as exc:
                return Answer(method, route, None, problem=exc.message)
    status = response.status_code
    data = None
    if 200 <= status < 300:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
    envelope = error_envelope(raw)
    if envelope and envelope.get("message"):
        # A gateway may echo the key it refused ("Incorrect API key: Bearer sk-…").
        envelope = {**envelope, "message": http.redact(envelope["message"] or "")}
    return Answer(method, route, status, content_type, envelope, data)


def check(client: ProviderClient) -> ConnectionReport:
    """See `ProviderClient.check`."""
    started = time.monotonic()
    openrouter = client.dialect == OPENROUTER
    missing = "video_" + secrets.token_hex(12)  # an id no provider has issued
    models_route = ROUTE_VIDEO_MODELS if openrouter else ROUTE_MODELS
    catalog = ask(client, "GET", models_route, cap=client.list_max_bytes)
    retrieve = ask(client, "GET", "/videos/{id}", path=f"/videos/{missing}")
    listing = None
    if not openrouter:
        listing = ask(
            client,
            "GET",
            "/videos",
            params=client.list_params(limit=1),
            cap=client.list_max_bytes,
        )
    if catalog.status is None and retrieve.status is None:  # nothing answered at all
        raise ProviderUnavailable(retrieve.problem or catalog.problem)
    key, key_words = _key(catalog, retrieve, listing, trust_catalog=not openrouter)
    findings = [Finding("key", key, key_words)]
    if key is False:
        return _report(findings, key, started, "The key was refused.")
    create = ask(client, "POST", "/videos", body={})
    exists = [retrieve.route_exists(by_id=True), create.route_exists(by_id=False)]
    if listing is not None:
        exists.append(_listed(listing))
    if True not in exists and retrieve.route_exists(by_id=True) is False:
        raise NoVideosApi(NO_VIDEOS_API_MESSAGE.format(retrieve.asked), status=retrieve.status)
    newest = _newest(listing)
    findings += [
        _list_finding(client, listing),
        _create_finding(create),
        *_derive_findings(client, missing),
        _delete_finding(client, missing),
        _variants_finding(client, newest),
        Finding(
            "idempotency",
            None,
            "Whether the provider honours Idempotency-Key shows only when the same paid create "
            "is sent twice, so it was not tried; leave “honours Idempotency-Key” off unless "
            "the provider documents it.",
        ),
    ]
    models, models_finding = _models(catalog, openrouter)
    findings.append(models_finding)
    return _report(findings, key, started, "", models)


def _report(
    findings: list[Finding],
    key: bool | None,
    started: float,
    message: str,
    models: list[ModelInfo] | None = None,
) -> ConnectionReport:
    suggested = {
        SUGGESTS[f.capability]: bool(f.works)
        for f in findings
        if f.capability in SUGGESTS and f.works is not None
    }
    if not message:
        checked = [f for f in findings if f.capability != "key" and f.works is not None]
        broken = [f.capability for f in checked if f.works is False]
        lead = (
            "The Videos API answers and the key is accepted"
            if key
            else "The Videos API answers, but whether the key is accepted could not be told"
        )
        works = f"{len(checked) - len(broken)} of {len(checked)} capabilities checked work"
        message = f"{lead}; {works}" + (f" (not: {', '.join(broken)})." if broken else ".")
    return ConnectionReport(
        key_accepted=key,
        findings=findings,
        suggested=suggested,
        message=message,
        elapsed=time.monotonic() - started,
        models=models or [],
    )


def _key(
    catalog: Answer, retrieve: Answer, listing: Answer | None, *, trust_catalog: bool
) -> tuple[bool | None, str]:
    for answer in (catalog, retrieve) if trust_catalog else (retrieve,):
        if answer.status in (401, 403) or answer.refuses_the_key:
            return False, f"The key was refused ({answer.asked} answered {answer.said})."
    if trust_catalog and catalog.status == 200:
        return True, f"The key is accepted ({catalog.asked} answered HTTP 200)."
    if retrieve.status == 404 and retrieve.api_error:
        return True, (
            f"The key is accepted (a retrieve of an id that does not exist answered 404 "
            f"with the API's error: {retrieve.said})."
        )
    if listing is not None and listing.status == 200:
        return True, "The key is accepted (GET /videos answered HTTP 200)."
    return None, (
        f"Could not tell whether the key is accepted ({catalog.asked} answered "
        f"{catalog.said}; {retrieve.asked} answered {retrieve.said})."
    )


def _listed(listing: Answer) -> bool | None:
    if listing.status == 404:
        return False  # the collection path always exists on a Videos API that lists
    return listing.route_exists(by_id=False)


def _newest(listing: Answer | None) -> RemoteVideo | None:
    if listing is None or listing.status != 200:
        return None
    try:
        page = parse_page(listing.data)
    except ProviderError:
        return None
    return page.data[0] if page.data else None


def _list_finding(client: ProviderClient, listing: Answer | None) -> Finding:
    if listing is None:
        return Finding("list", False, OPENROUTER_LACKS["list"] + ", so it cannot be synced.")
    hint = client.routing_hint
    if listing.status == 200:
        try:
            page = parse_page(listing.data)
        except ProviderError as exc:
            return Finding("list", False, f"GET /videos answered, but not a list: {exc.message}")
        found = f"the newest job is {page.data[0].status}" if page.data else "no jobs yet"
        via = f" with the routing hint “{hint}”" if hint else ""
        return Finding("list", True, f"Listing jobs works{via} ({found}).")
    if listing.status in (400, 422):
        advice = (
            f" even with the routing hint “{hint}”; check the hint."
            if hint
            else ". LiteLLM lists only with a routing hint: set “routing hint” (e.g. openai) "
            "and check again."
        )
        return Finding("list", False, f"The provider refused to list ({listing.said}){advice}")
    if listing.route_exists(by_id=False) is False or listing.status == 404:
        return Finding("list", False, f"The provider has no list of jobs ({listing.said}).")
    if listing.status in (401, 403):
        return Finding("list", False, f"The key may not list jobs ({listing.said}).")
    return Finding("list", None, f"Could not tell whether listing works ({listing.said}).")


def _create_finding(create: Answer) -> Finding:
    exists = create.route_exists(by_id=False)
    if exists and create.status is not None and create.status >= 300:
        return Finding(
            "create",
            True,
            f"POST /videos is there: it refused an empty request ({create.said}), as it should; "
            "creating a video costs money, so no real one was tried.",
        )
    if exists:
        return Finding("create", True, f"POST /videos accepted an empty request ({create.said}).")
    if exists is False:
        return Finding("create", False, f"POST /videos is not there ({create.said}).")
    return Finding("create", None, f"Could not tell whether creating works ({create.said}).")


def _derive_findings(client: ProviderClient, missing: str) -> list[Finding]:
    """Remix, edit and extend: routes that make a new video from an existing one."""
    if client.dialect == OPENROUTER:
        return [
            Finding("remix", False, OPENROUTER_LACKS["remix"] + "."),
            Finding("edit", False, OPENROUTER_LACKS["edit"] + "."),
            Finding(
                "extend",
                None,
                "OpenRouter continues a finished job with previous_job_id (POST /videos); "
                "whether a model allows it shows only on a paid job, so it was not tried.",
            ),
        ]
    probes = [
        ("remix", "remix", "/videos/{id}/remix", f"/videos/{missing}/remix", True),
        ("edit", "edits", "/videos/edits", None, False),
        ("extend", "extensions", "/videos/extensions", None, False),
    ]
    found = []
    for capability, noun, route, path, by_id in probes:
        answer = ask(client, "POST", route, path=path, body={})
        exists = answer.route_exists(by_id=by_id)
        if exists:
            words = (
                f"The provider offers {noun} ({answer.asked} refused a test request: "
                f"{answer.said})."
            )
        elif exists is False:
            words = f"The provider does not offer {noun} ({answer.asked} answered {answer.said})."
        else:
            words = f"Could not tell whether the provider offers {noun} ({answer.said})."
        found.append(Finding(capability, exists, words))
    return found


def _delete_finding(client: ProviderClient, missing: str) -> Finding:
    if client.dialect == OPENROUTER:
        return Finding("delete", False, OPENROUTER_LACKS["delete"] + ".")
    answer = ask(client, "DELETE", "/videos/{id}", path=f"/videos/{missing}")
    exists = answer.route_exists(by_id=True)
    if exists:
        return Finding("delete", True, f"Deleting works (DELETE of an unknown id: {answer.said}).")
    if exists is False:
        return Finding(
            "delete",
            False,
            f"The provider cannot delete its copies ({answer.asked} answered {answer.said}); "
            "a deleted video is removed here only and stays there until it expires.",
        )
    return Finding("delete", None, f"Could not tell whether deleting works ({answer.said}).")


def _variants_finding(client: ProviderClient, newest: RemoteVideo | None) -> Finding:
    if client.dialect == OPENROUTER:
        words = OPENROUTER_LACKS["variants"] + "; posters and spritesheets are made here."
        return Finding("variants", False, words)
    if newest is None or newest.status != "completed":
        return Finding(
            "variants",
            None,
            "Could not tell whether the provider serves thumbnails: the list gave no finished "
            "video to try.",
        )
    answer = ask(
        client,
        "GET",
        "/videos/{id}/content",
        path=f"/videos/{quote(newest.id, safe='')}/content",
        params={"variant": IMAGE_VARIANT},
        read=False,
    )
    mime = answer.content_type.split(";")[0].strip().lower()
    if answer.status is not None and 200 <= answer.status < 300:
        if mime.startswith("image/"):
            return Finding("variants", True, f"Thumbnails come as images ({mime}).")
        return Finding(
            "variants",
            False,
            f"Asked for a thumbnail, the provider answered {mime or 'no content type'}, not an "
            "image; posters and spritesheets will be made here from the video.",
        )
    if answer.status in (400, 404, 415):
        return Finding(
            "variants",
            False,
            f"The provider does not serve thumbnails ({answer.said}); posters and spritesheets "
            "will be made here from the video.",
        )
    return Finding("variants", None, f"Could not tell whether thumbnails work ({answer.said}).")


def _models(catalog: Answer, openrouter: bool) -> tuple[list[ModelInfo], Finding]:
    if catalog.status == 200:
        models = dialects.parse_models(catalog.data)
        if not models:
            return [], Finding("models", None, f"{catalog.asked} listed no models this can read.")
        names = dialects.model_names(models)
        return models, Finding("models", True, f"{len(models)} models: {names}.")
    if catalog.status in (404, 405):
        return [], Finding(
            "models", False, f"There is no model list ({catalog.asked} answered {catalog.said})."
        )
    return [], Finding("models", None, f"Could not read the model list ({catalog.said}).")
