"""The job lifecycle: providers and their catalogs, videos mirroring the Video object, spend.

Django finds the models here; the modules are split by concern.
"""

from jobs.models.audit import AuditEvent, NotificationTarget, OutboundAttempt, OutboundDelivery
from jobs.models.collections import Collection, CollectionItem, ShareLink
from jobs.models.common import owner_or_staff
from jobs.models.people import Profile
from jobs.models.providers import CatalogEntry, Provider
from jobs.models.review import COMMENT_MAX_LENGTH, Comment, Mention, Review
from jobs.models.spend import Budget, Charge
from jobs.models.videos import (
    ARCHIVING,
    PROVIDER_ID_LENGTH,
    SIZES,
    Batch,
    StatusChange,
    Video,
    VideoQuerySet,
    WebhookDelivery,
)

__all__ = [
    "ARCHIVING",
    "COMMENT_MAX_LENGTH",
    "AuditEvent",
    "Collection",
    "CollectionItem",
    "Comment",
    "Mention",
    "NotificationTarget",
    "OutboundAttempt",
    "OutboundDelivery",
    "Review",
    "ShareLink",
    "PROVIDER_ID_LENGTH",
    "SIZES",
    "Batch",
    "Budget",
    "CatalogEntry",
    "Charge",
    "Profile",
    "Provider",
    "StatusChange",
    "Video",
    "VideoQuerySet",
    "WebhookDelivery",
    "owner_or_staff",
]
