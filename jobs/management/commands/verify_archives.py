"""Re-check archived videos' stored files with the archiver's own verification."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobs.archive import mark_broken, stored_problems
from jobs.lib.storage import storage_problem, unreadable
from jobs.models import Video
from jobs.services.manage import rearchive


class Command(BaseCommand):
    help = (
        "Check every archived video's stored files (MP4 structure and a decoded frame, the "
        "images), on local disk or in the bucket. Prints one line per problem and a summary; "
        "exits non-zero while problems remain. With --fix, broken ones are fetched again while "
        "the provider still has them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="queue broken videos to be archived again (those whose links expired at the "
            "provider are marked 'Could not be archived' instead)",
        )
        parser.add_argument(
            "--video",
            dest="videos",
            type=int,
            nargs="+",
            action="extend",
            metavar="ID",
            help="check only these videos (local ids, as in /videos/ID/)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        fix: bool = options["fix"]
        videos = Video.objects.filter(asset_state=Video.Assets.ARCHIVED).order_by("pk")
        if options["videos"]:
            wanted = set(options["videos"])
            videos = videos.filter(pk__in=wanted)
            found = set(videos.values_list("pk", flat=True))
            for pk in sorted(wanted - found):
                self.stdout.write(f"video #{pk}: not archived here, nothing to check")
        if videos.exists() and (problem := unreadable()):
            raise CommandError(f"Could not read the archive's storage: {problem}. Nothing checked.")
        checked = broken = queued = lost = 0
        now = timezone.now()
        for video in videos.iterator():
            checked += 1
            try:
                problems = stored_problems(video)
            except Exception as exc:
                # The bucket is down or refuses us: every file would look broken, and --fix
                # would fetch them all again. Stop and say so instead.
                if (problem := storage_problem(exc)) is None:
                    raise
                raise CommandError(
                    f"Could not read the archive's storage ({problem}); nothing was changed "
                    f"for video #{video.pk} or after it."
                ) from exc
            if not problems:
                continue
            broken += 1
            for problem in problems:
                self.stdout.write(self.style.ERROR(f"video #{video.pk} ({video}): {problem}"))
            if not fix:
                continue
            if video.expires_at is not None and video.expires_at <= now:
                mark_broken(
                    video.pk,
                    f"The archived files failed verification ({problems[0]}) and the "
                    f"provider's links expired on {video.expires_at:%Y-%m-%d %H:%M} UTC, so "
                    "they cannot be fetched again.",
                )
                self.stdout.write(
                    f"video #{video.pk}: not fetched again, the provider's links have expired"
                )
                lost += 1
            else:
                rearchive(
                    video_id=video.pk,
                    reason=f"Stored files failed verification ({problems[0]}); fetching again.",
                )
                queued += 1
        self.stdout.write(self.summary(checked, broken, queued, lost, fix=fix))
        remaining = broken - queued
        if remaining:
            raise CommandError(f"{remaining} archived video(s) have files that failed verification")

    @staticmethod
    def summary(checked: int, broken: int, queued: int, lost: int, *, fix: bool) -> str:
        text = f"checked {checked} archived video(s): {checked - broken} fine, {broken} broken"
        if fix and broken:
            text += f"; {queued} queued to be fetched again, {lost} expired at the provider"
        elif broken:
            text += " (run with --fix to fetch them again)"
        return text
