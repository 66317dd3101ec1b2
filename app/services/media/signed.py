"""Short-lived signed URLs, so a page's <img> and <audio> load without a bearer header.

A signed URL names one file (a photo or recording and which of its files, or one image of
a board version), the viewer it was made for and when it expires; an HMAC-SHA256 over all
three, with a key derived from the service's secret key, binds them. It only says *who*
is asking: serving it still checks that this viewer may see the child now (a worker who
lost the child stops reading at once) and audits the read as the viewer's.

    /api/v1/signed/media/{media_id}/{which}?viewer=…&expires=…&signature=…
    /api/v1/signed/boards/{board_id}/versions/{version}/images/{image_id}?viewer=…
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

from sqlmodel import Session

from app.core.clock import utcnow
from app.core.context import Actor
from app.core.errors import Forbidden
from app.models.staff import User

SIGNED_PATH = "/api/v1/signed"
_KEY_PURPOSE = b"childvoice signed media URL v1"


@dataclass(frozen=True)
class Signature:
    viewer: uuid.UUID
    expires: int  # seconds since the epoch
    signature: str


class SignedUrls:
    """Makes and checks signed URLs; one per process (app.state.signed_urls)."""

    def __init__(self, secret_key: str, lifetime_seconds: int) -> None:
        # A key of its own, so a signature can never be mistaken for a token's.
        self._key = hmac.new(secret_key.encode(), _KEY_PURPOSE, hashlib.sha256).digest()
        self.lifetime = timedelta(seconds=lifetime_seconds)

    def _sign(self, resource: str, viewer: uuid.UUID, expires: int) -> str:
        message = f"{resource}\n{viewer}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _url(self, path: str, resource: str, viewer: uuid.UUID) -> str:
        expires = int((utcnow() + self.lifetime).timestamp())
        query = urlencode({"viewer": str(viewer), "expires": expires,
                           "signature": self._sign(resource, viewer, expires)})
        return f"{SIGNED_PATH}{path}?{query}"

    def media_url(self, media_id: uuid.UUID, which: str, viewer: uuid.UUID) -> str:
        """`which`: main, thumbnail or playback."""
        return self._url(f"/media/{media_id}/{which}", media_resource(media_id, which), viewer)

    def board_image_url(self, board_id: uuid.UUID, version: int, image_id: str,
                        viewer: uuid.UUID) -> str:
        path = f"/boards/{board_id}/versions/{version}/images/{quote(image_id, safe='')}"
        return self._url(path, board_image_resource(board_id, version, image_id), viewer)

    def viewer(self, db: Session, resource: str, given: Signature) -> Actor:
        """The viewer a valid, unexpired signature for `resource` was made for, or 403."""
        expected = self._sign(resource, given.viewer, given.expires)
        # compare_digest takes ASCII text only: any other signature is simply not ours.
        if not given.signature.isascii() or \
                not hmac.compare_digest(expected, given.signature):
            raise Forbidden("This link's signature does not match it: it was changed, or it "
                            "is for another file. Open the page again for a fresh link.",
                            slug="signed-url-invalid", title="Link not valid")
        if given.expires <= utcnow().timestamp():
            raise Forbidden("This link has expired. Open the page again for a fresh link.",
                            slug="signed-url-expired", title="Link expired")
        user = db.get(User, given.viewer)
        if user is None or not user.is_active:
            raise Forbidden("The person this link was made for can no longer sign in.",
                            slug="signed-url-invalid", title="Link not valid")
        return Actor(user=user)


def media_resource(media_id: uuid.UUID, which: str) -> str:
    return f"media:{media_id}:{which}"


def board_image_resource(board_id: uuid.UUID, version: int, image_id: str) -> str:
    return f"board-image:{board_id}:{version}:{image_id}"
