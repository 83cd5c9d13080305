from __future__ import annotations

from django.urls import path

from jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.video_list, name="list"),
    path("videos/<int:pk>/", views.video_detail, name="detail"),
    path("videos/<int:pk>/remix/", views.remix, name="remix"),
    path("videos/<int:pk>/delete/", views.delete_confirm, name="delete-confirm"),
    path("videos/<int:pk>/delete/confirmed/", views.delete, name="delete"),
    path("media/<path:path>", views.media, name="media"),
    path("webhooks/<int:provider_id>/", views.webhook, name="webhook"),
]

# --- Beyond remix ------------------------------------------------------------------------------
urlpatterns += [
    path("videos/new/", views.create_video, name="create"),
    path("videos/<int:pk>/family/", views.family, name="family"),
    path("videos/<int:pk>/batch/", views.batch_remix, name="batch-new"),
    path("videos/<int:pk>/retry/", views.retry, name="retry"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("compare/", views.compare, name="compare"),
    path("import/", views.import_videos, name="import"),
    path("usage/", views.usage, name="usage"),
    path("notifications/", views.notifications, name="notifications"),
]
