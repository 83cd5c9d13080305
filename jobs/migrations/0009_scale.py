# Pages of constant cost at 100,000 videos (issue 12): an index for each sort the table offers,
# a covering index for the usage page's monthly sums, and on PostgreSQL trigram indexes for the
# search box.

from django.db import migrations, models

# Django's PostgreSQL backend writes `prompt__icontains` as UPPER("prompt"::text) LIKE UPPER(%s)
# and `video_id__istartswith` as UPPER("video_id"::text) LIKE UPPER(%s): the indexes are on
# those same expressions, or the planner cannot use them. pg_trgm is a trusted extension (PG 13
# and later), so the database's owner may create it; CREATE EXTENSION IF NOT EXISTS makes the
# migration a no-op where an operator already has.
TRIGRAM_SQL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # the search box: any part of a prompt (selectors.search_query)
    'CREATE INDEX IF NOT EXISTS video_prompt_trgm ON "jobs_video" '
    'USING gin ((UPPER("prompt"::text)) gin_trgm_ops)',
    # the search box: a provider id's beginning ("video_abc…")
    'CREATE INDEX IF NOT EXISTS video_id_upper_prefix ON "jobs_video" '
    '((UPPER("video_id"::text)) text_pattern_ops)',
]
DROP_SQL = [
    "DROP INDEX IF EXISTS video_id_upper_prefix",
    "DROP INDEX IF EXISTS video_prompt_trgm",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return  # SQLite searches prompts with LIKE over the table, as before
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_team_review"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="video", name="video_status_recent"),
        migrations.AddIndex(
            model_name="video",
            index=models.Index(
                fields=["status", "-requested_at", "-id"], name="video_status_recent"
            ),
        ),
        migrations.AddIndex(
            model_name="video",
            index=models.Index(fields=["model", "-requested_at", "-id"], name="video_model_recent"),
        ),
        migrations.RemoveIndex(model_name="charge", name="charge_at"),
        migrations.AddIndex(
            model_name="charge",
            index=models.Index(fields=["at", "basis", "amount"], name="charge_at_amount"),
        ),
        migrations.RunPython(_run(TRIGRAM_SQL), _run(DROP_SQL), elidable=False),
    ]
