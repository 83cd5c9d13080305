from __future__ import annotations

from django.urls import path

from jobs.views import batches, create, files, imports, table, usage, videos

app_name = "jobs"
urlpatterns = [
    path("", table.video_list, name="list"),
    path("notifications/", table.notifications, name="notifications"),
    path("view/", table.set_view, name="set-view"),
    path("videos/new/", create.create_video, name="create"),
    path("videos/new/options/", create.create_options, name="create-options"),
    path("videos/<int:pk>/", videos.video_detail, name="detail"),
    path("videos/<int:pk>/remix/", videos.remix, name="remix"),
    path("videos/<int:pk>/retry/", videos.retry, name="retry"),
    path("videos/<int:pk>/cancel/", videos.cancel, name="cancel"),
    path("videos/<int:pk>/delete/", videos.delete_confirm, name="delete-confirm"),
    path("videos/<int:pk>/delete/confirmed/", videos.delete, name="delete"),
    path("videos/<int:pk>/send-again/", videos.unconfirmed_send_again, name="send-again"),
    path("videos/<int:pk>/give-up/", videos.unconfirmed_give_up, name="give-up"),
    path("videos/<int:pk>/family/", videos.family, name="family"),
    path("compare/", videos.compare, name="compare"),
    path("videos/<int:pk>/batch/", batches.batch_remix, name="batch-new"),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/<int:pk>/", batches.batch_detail, name="batch"),
    path("batches/<int:pk>/retry-failed/", batches.batch_retry_failed, name="batch-retry-failed"),
    path("import/", imports.import_videos, name="import"),
    path("usage/", usage.usage, name="usage"),
    path("media/<path:path>", files.media, name="media"),
    path("webhooks/<int:provider_id>/", files.webhook, name="webhook"),
]
