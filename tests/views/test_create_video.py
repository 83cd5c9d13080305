"""Create video: catalog-driven form, reference image checks, cost estimate, idempotent submit."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.lib.images import check_reference_image
from jobs.models import CatalogEntry, Provider, Video
from jobs.services.submit import submit_create
from tests.conftest import drive

URL = "/videos/new/"


def image(width: int, height: int, fmt: str = "PNG", name: str = "ref.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def form(provider: Provider, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "key": str(uuid.uuid4()),
        "provider": provider.pk,
        "model": "sora-2",
        "size": "1280x720",
        "seconds": "4",
        "prompt": "a lighthouse at dusk",
    }
    data.update(overrides)
    return data


def test_the_page_offers_the_catalog_and_an_estimate(alice_client, provider) -> None:
    r = alice_client.get(URL)
    assert r.status_code == 200
    body = r.content.decode()
    assert r.context["catalog"][str(provider.pk)]["models"]["sora-2-pro"]["1792x1024"] == {
        "seconds": ["4", "8", "12"],
        "price": "0.5000",
    }
    assert 'id="create-options"' in body and "js/create." in body
    assert "Estimated cost" in body and "$0.40" in body  # sora-2, 4 s at $0.10
    assert 'type="file"' in body and "image/jpeg,image/png,image/webp" in body


def test_the_menus_follow_the_chosen_model(alice_client, provider) -> None:
    def menus(**picked: str) -> tuple[list[str], list[str], str]:
        query = {"provider": str(provider.pk), **picked}
        r = alice_client.get(f"{URL}options/", query, headers={"HX-Request": "true"})
        assert r.status_code == 200 and b"<html" not in r.content
        sizes = r.context["menu"].sizes
        return sizes, r.context["menu"].lengths, r.content.decode()

    sizes, lengths, body = menus(model="sora-2")
    assert set(sizes) == {"720x1280", "1280x720"}  # sora-2 has no large sizes
    assert lengths == ["4", "8", "12"]
    sizes, _, body = menus(model="sora-2-pro", size="1792x1024", seconds="8")
    assert set(sizes) == {"720x1280", "1280x720", "1024x1792", "1792x1024"}
    assert "$4.00" in body and "8 s of sora-2-pro at 1792x1024" in body  # 8 s at $0.50
    _, _, body = menus(model="sora-2", size="1792x1024")  # not offered: the first size instead
    assert 'value="1792x1024"' not in body


def test_the_nav_and_the_table_link_to_it(alice_client, provider) -> None:
    body = alice_client.get("/").content.decode()
    assert body.count(f'href="{URL}"') >= 2  # nav and the table toolbar


def test_a_created_video_goes_to_the_provider_and_completes(
    alice_client, alice, provider, simulator
) -> None:
    r = alice_client.post(URL, form(provider, seconds="8"))
    assert r.status_code == 302
    video = Video.objects.get(prompt="a lighthouse at dusk")
    assert (video.owner, video.model, video.size, video.seconds) == (
        alice,
        "sora-2",
        "1280x720",
        "8",
    )
    assert video.cost_estimate == Decimal("0.80")
    assert not video.is_derived
    drive(lambda: Video.objects.get(pk=video.pk).playable)
    assert simulator.stats()["jobs_created"] == 1


def test_a_reference_image_is_sent_as_the_first_frame(
    alice_client, provider, simulator, django_capture_on_commit_callbacks
) -> None:
    upload = image(1280, 720, "PNG", name="photo.jpg")  # a misleading name: the bytes decide
    with django_capture_on_commit_callbacks(execute=True):
        r = alice_client.post(URL, {**form(provider), "input_reference": upload})
    assert r.status_code == 302
    video = Video.objects.get()
    assert video.input_reference.name is not None
    assert video.input_reference.name.endswith(".png")
    drive(lambda: Video.objects.get(pk=video.pk).status == Video.Status.COMPLETED)
    sent = list((simulator.data_dir / "references").iterdir())
    assert isinstance(upload.file, io.BytesIO)  # SimpleUploadedFile keeps its bytes in memory
    assert len(sent) == 1 and sent[0].read_bytes() == upload.file.getvalue()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            lambda: image(1024, 1024),
            "1024×1024 pixels, but a 1280x720 video needs exactly 1280×720",
        ),
        (lambda: image(720, 1280, "WEBP", "r.webp"), "720×1280 pixels"),
        (lambda: image(1280, 720, "GIF", "r.gif"), "GIF file; use a JPEG, PNG or WebP"),
        (
            lambda: SimpleUploadedFile("r.png", b"not an image at all", "image/png"),
            "not a readable JPEG, PNG or WebP",
        ),
    ],
)
def test_a_bad_reference_image_is_refused_next_to_the_field(
    alice_client, provider, simulator, upload, message: str
) -> None:
    r = alice_client.post(URL, {**form(provider), "input_reference": upload()})
    assert r.status_code == 400
    assert message in r.context["form"].errors["input_reference"][0]
    assert message.split(",")[0] in r.content.decode().replace("&#x27;", "'")
    assert Video.objects.count() == 0 and simulator.stats()["jobs_created"] == 0


def test_jpeg_and_webp_of_the_right_size_pass(provider) -> None:
    assert check_reference_image(image(720, 1280, "JPEG", "a.jpg"), "720x1280") == ".jpg"
    assert check_reference_image(image(1280, 720, "WEBP", "a.webp"), "1280x720") == ".webp"


def test_uploads_over_10_mb_are_refused(alice_client, provider) -> None:
    big = SimpleUploadedFile("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")
    with pytest.raises(ValidationError, match="larger than the 10 MB limit"):
        check_reference_image(big, "1280x720")
    r = alice_client.post(URL, {**form(provider), "input_reference": big})
    assert r.status_code == 400 and b"larger than the 10 MB limit" in r.content
    # Far over the cap, the request is refused before the upload is even parsed.
    huge = SimpleUploadedFile("huge.png", b"\0" * (12 * 1024 * 1024), "image/png")
    r = alice_client.post(URL, {**form(provider), "input_reference": huge})
    assert r.status_code == 400 and b"The upload is larger than 10 MB" in r.content
    assert Video.objects.count() == 0


def test_a_combination_the_model_does_not_offer_is_refused(alice_client, provider) -> None:
    r = alice_client.post(URL, form(provider, size="1792x1024"))
    assert r.status_code == 400
    assert b"sora-2 does not offer 4 s at 1792x1024" in r.content
    assert Video.objects.count() == 0


def test_the_pro_model_offers_the_large_sizes(alice_client, provider) -> None:
    r = alice_client.post(URL, form(provider, model="sora-2-pro", size="1792x1024", seconds="12"))
    assert r.status_code == 302
    assert Video.objects.get().cost_estimate == Decimal("6.00")  # 12 s at $0.50


def test_a_double_submit_makes_one_job(alice_client, provider, simulator) -> None:
    data = form(provider)
    assert alice_client.post(URL, data).status_code == 302
    assert alice_client.post(URL, data).status_code == 302
    assert Video.objects.count() == 1


def test_errors_keep_what_was_typed(alice_client, provider) -> None:
    r = alice_client.post(URL, form(provider, prompt="   "))
    assert r.status_code == 400 and b"cannot be empty" in r.content
    r = alice_client.post(URL, form(provider, prompt="keep me", size="1792x1024"))
    assert b"keep me" in r.content


def test_a_provider_without_create_is_not_offered(alice_client, provider) -> None:
    provider.can_create = False
    provider.save()
    r = alice_client.get(URL)
    assert b"No configured provider offers creating videos" in r.content
    assert b"does not offer creating videos" in r.content
    with pytest.raises(ValidationError, match="does not offer creating videos"):
        submit_create(
            user=r.context["user"],
            provider=provider,
            prompt="p",
            model="sora-2",
            size="1280x720",
            seconds="4",
            key=uuid.uuid4(),
        )


def test_the_seconds_offered_follow_the_catalog(alice_client, provider) -> None:
    CatalogEntry.objects.filter(provider=provider, model="sora-2").update(seconds=["4", "8"])
    r = alice_client.post(URL, form(provider, seconds="12"))
    assert r.status_code == 400 and b"sora-2 does not offer 12 s at 1280x720" in r.content
