"""`ProviderClient.check()`: a wrong key told from a right one, and each capability verified
without a paid job, on the simulator (plain, LiteLLM and new-api accents, OpenRouter dialect)
and on stand-in gateways shaped like LiteLLM's FastAPI proxy and a bare OpenAI re-host."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from jobs.provider.client import ProviderClient
from jobs.provider.errors import NoVideosApi, ProviderUnavailable
from jobs.provider.schema import ConnectionReport
from tests.conftest import Simulator
from tests.unit.test_provider_client import Reply, Seen, fake_server, html_404

RIGHT = "sk-right-key-0123456789"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def keyed(simulator: Simulator) -> Iterator[Simulator]:
    """The simulator accepting only RIGHT, as a real provider does."""
    simulator.configure(api_key=RIGHT)
    yield simulator
    simulator.configure(api_key=None)


@pytest.fixture
def keyed_openrouter(openrouter_simulator: Simulator) -> Iterator[Simulator]:
    openrouter_simulator.configure(api_key=RIGHT)
    yield openrouter_simulator
    openrouter_simulator.configure(api_key=None)


def check(
    base_url: str, key: str = RIGHT, *, dialect: str = "openai", routing_hint: str = ""
) -> ConnectionReport:
    with ProviderClient(
        base_url, key, max_retries=0, dialect=dialect, routing_hint=routing_hint
    ) as api:
        return api.check()


def works(report: ConnectionReport) -> dict[str, bool | None]:
    return {finding.capability: finding.works for finding in report.findings}


def envelope(status: int, message: str) -> Reply:
    return status, JSON, json.dumps({"error": {"message": message, "type": "x"}}).encode()


def no_paid_job(seen: list[Seen]) -> None:
    """Every POST a check sent carried no prompt: nothing a provider could bill."""
    for request in seen:
        if request.method == "POST":
            assert b"prompt" not in request.body, request


# --- the simulator ---------------------------------------------------------------------------


def test_the_plain_simulator_offers_everything(keyed: Simulator) -> None:
    [video] = keyed.seed(1)
    report = check(keyed.base_url)
    assert report.key_accepted is True
    assert works(report) == {
        "key": True,
        "list": True,
        "create": True,
        "remix": True,
        "edit": True,
        "extend": True,
        "delete": True,
        "variants": True,
        "idempotency": None,
        "models": True,
    }
    assert report.suggested == {
        "can_list": True,
        "can_remix": True,
        "can_edit": True,
        "can_extend": True,
        "can_delete": True,
        "serves_variants": True,
    }
    assert report.message == (
        "The Videos API answers and the key is accepted; 8 of 8 capabilities checked work."
    )
    assert "sora-2" in [model.id for model in report.models]
    assert keyed.stats()["jobs_created"] == 0
    with ProviderClient(keyed.base_url, RIGHT) as api:  # the probes deleted nothing
        assert api.retrieve(video["id"]).status == "completed"
    idempotency = report.finding("idempotency")
    assert idempotency is not None and "paid" in idempotency.words


@pytest.mark.parametrize("accent", [[], ["litellm"], ["new-api"]])
def test_a_wrong_key_is_told_from_a_right_one(keyed: Simulator, accent: list[str]) -> None:
    keyed.configure(quirks=accent)
    wrong = check(keyed.base_url, key="sk-wrong-key-999999")
    assert wrong.key_accepted is False and wrong.suggested == {}
    assert wrong.message == "The key was refused."
    key = wrong.finding("key")
    assert key is not None and "401" in key.words and "sk-wrong-key-999999" not in key.words
    assert check(keyed.base_url).key_accepted is True


def test_litellm_is_a_right_key_that_cannot_list_delete_or_serve_variants(
    keyed: Simulator,
) -> None:
    keyed.configure(quirks=["litellm"])
    keyed.seed(1)
    report = check(keyed.base_url)
    assert report.key_accepted is True  # its list answers 400 for any key: not the judge
    found = works(report)
    assert (found["list"], found["delete"], found["variants"]) == (False, False, None)
    assert (found["remix"], found["edit"], found["extend"]) == (True, True, True)
    listed = report.finding("list")
    assert listed is not None and "routing hint" in listed.words
    assert "not: list, delete" in report.message
    hinted = check(keyed.base_url, routing_hint="openai")
    assert works(hinted)["list"] is True
    assert works(hinted)["variants"] is False  # the thumbnail came back as video/mp4
    variants = hinted.finding("variants")
    assert variants is not None and "video/mp4" in variants.words
    assert hinted.suggested["serves_variants"] is False and hinted.suggested["can_delete"] is False


def test_new_api_has_no_list_delete_edits_or_extensions(keyed: Simulator) -> None:
    keyed.configure(quirks=["new-api"])
    report = check(keyed.base_url)
    assert report.key_accepted is True
    assert report.suggested == {
        "can_list": False,
        "can_remix": True,
        "can_edit": False,
        "can_extend": False,
        "can_delete": False,
    }


def test_without_get_models_the_key_is_judged_by_a_retrieve(keyed: Simulator) -> None:
    keyed.configure(quirks=["no_models"])
    report = check(keyed.base_url)
    key = report.finding("key")
    assert report.key_accepted is True and key is not None and "404" in key.words
    assert works(report)["models"] is False
    assert check(keyed.base_url, key="sk-wrong-key-999999").key_accepted is False


def test_openrouter_is_judged_by_its_jobs_not_its_public_catalog(
    keyed_openrouter: Simulator,
) -> None:
    right = check(keyed_openrouter.base_url, dialect="openrouter")
    assert right.key_accepted is True
    assert right.suggested == {
        "can_list": False,
        "can_remix": False,
        "can_edit": False,
        "can_delete": False,
        "serves_variants": False,
    }
    assert works(right)["extend"] is None and works(right)["models"] is True
    assert {model.id for model in right.models} >= {"openai/sora-2", "openai/sora-2-pro"}
    wrong = check(keyed_openrouter.base_url, key="sk-wrong-key-999999", dialect="openrouter")
    assert wrong.key_accepted is False
    sent = set(keyed_openrouter.stats()["requests"])
    # Known beforehand: no list, remix, edit, delete or thumbnail request went out.
    assert not {route for route in sent if "remix" in route or "content" in route}
    assert not {route for route in sent if route.startswith(("DELETE", "GET /api/v1/videos "))}
    assert "GET /api/v1/videos" not in sent


# --- stand-in gateways ------------------------------------------------------------------------


def litellm_like(seen: Seen) -> Reply:
    """LiteLLM's proxy as observed: FastAPI, no DELETE route, unknown ids sent upstream (500)."""
    path = seen.path.split("?")[0]
    if seen.headers.get("Authorization") != f"Bearer {RIGHT}" and path != "/v1/videos":
        return envelope(401, "Authentication Error, Invalid proxy server token passed.")
    if seen.method == "GET" and path == "/v1/models":
        return 200, JSON, json.dumps({"data": [{"id": "sora-2", "object": "model"}]}).encode()
    if seen.method == "GET" and path == "/v1/videos":
        return envelope(400, "custom_llm_provider is required")
    if seen.method == "DELETE":
        return 405, JSON, b'{"detail":"Method Not Allowed"}'
    if path.endswith("/remix") or (seen.method == "GET" and path.startswith("/v1/videos/")):
        return envelope(500, "litellm.APIError: upstream answered 404")
    if seen.method == "POST":
        return envelope(400, "litellm.BadRequestError: prompt is required")
    return 404, JSON, b'{"detail":"Not Found"}'


def openai_rehost(seen: Seen) -> Reply:
    """A re-host with only the Videos routes: no /models, unknown routes a framework's 404."""
    path = seen.path.split("?")[0]
    if seen.headers.get("Authorization") != f"Bearer {RIGHT}":
        return envelope(401, "Invalid API key")
    if seen.method == "GET" and path.startswith("/v1/videos/"):
        return envelope(404, "No such video")
    if seen.method == "GET" and path == "/v1/videos":
        return 200, JSON, b'{"object": "list", "data": [], "has_more": false}'
    if seen.method == "POST" and path == "/v1/videos":
        return envelope(400, "prompt is required")
    return 404, {"Content-Type": "text/plain"}, b"404 page not found"


def test_a_litellm_like_proxy_is_told_apart_and_an_ambiguous_answer_is_not_guessed() -> None:
    with fake_server(litellm_like) as fake:
        right = check(fake.base_url)
        wrong = check(fake.base_url, key="sk-wrong-key-999999")
    assert right.key_accepted is True and wrong.key_accepted is False
    found = works(right)
    assert (found["list"], found["delete"], found["edit"]) == (False, False, True)
    assert found["remix"] is None  # a 500 says nothing about the route
    remix = right.finding("remix")
    assert remix is not None and remix.words.startswith("Could not tell")
    assert "can_remix" not in right.suggested
    no_paid_job(fake.seen)


def test_an_openai_rehost_without_models_is_judged_by_a_random_retrieve() -> None:
    with fake_server(openai_rehost) as fake:
        right = check(fake.base_url)
        wrong = check(fake.base_url, key="sk-wrong-key-999999")
    assert right.key_accepted is True and wrong.key_accepted is False
    assert right.suggested == {
        "can_list": True,
        "can_remix": False,
        "can_edit": False,
        "can_extend": False,
        "can_delete": False,
    }
    assert works(right)["models"] is False and works(right)["variants"] is None
    no_paid_job(fake.seen)


def test_a_server_that_is_no_videos_api_is_said_so() -> None:
    with fake_server(html_404) as fake:
        with pytest.raises(NoVideosApi):
            check(fake.base_url)


def test_a_provider_failing_everything_gives_could_not_tell_not_a_verdict() -> None:
    failing: Callable[[Seen], Reply] = lambda seen: envelope(503, "overloaded")  # noqa: E731
    with fake_server(failing) as fake:
        report = check(fake.base_url)
    assert report.key_accepted is None and report.suggested == {}
    assert report.message.startswith("The Videos API answers, but whether the key is accepted")


def test_nothing_answering_is_unavailable() -> None:
    with fake_server(html_404) as fake:
        base_url = fake.base_url
    with pytest.raises(ProviderUnavailable):  # the server is gone: connection refused
        check(base_url)


def test_the_variant_probe_never_reads_the_video(keyed: Simulator) -> None:
    keyed.configure(quirks=["no_variants"])
    keyed.seed(1)
    report = check(keyed.base_url)
    assert works(report)["variants"] is False
    served = keyed.stats()["requests"]
    assert served.get("GET /v1/videos/{id}/content") == 1  # one look, status and type only


def test_a_check_is_quick(keyed: Simulator) -> None:
    assert check(keyed.base_url).elapsed < 5
