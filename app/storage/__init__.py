"""Where media bytes live. Routers and services only see `MediaStore`; the local disk is the
default, and an S3-compatible store can be added beside it without touching them."""

from __future__ import annotations

from app.core.config import Settings
from app.storage.base import MediaStore, staging_dir
from app.storage.local import LocalDiskStore

__all__ = ["LocalDiskStore", "MediaStore", "make_store", "staging_dir"]


def make_store(settings: Settings) -> MediaStore:
    return LocalDiskStore(settings.media_root)
