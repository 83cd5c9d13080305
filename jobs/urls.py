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
