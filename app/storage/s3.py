"""An S3-compatible store (AWS S3, MinIO, Ceph RGW, Scaleway, …) through boto3.

Objects: `<prefix>objects/<sha256>` for blobs, `<prefix>uploads/<upload id>/<part>` for the
parts of resumable uploads. A blob is created only if absent: PutObject carries
`If-None-Match: *` (S3 and most compatible servers refuse it with 412 when the key exists);
a server that does not implement conditional writes answers 501, and the store then falls
back to head-then-put for the rest of its life. The key is the content's SHA-256, so two
writers racing through that window write the same bytes: the race is harmless.
Reads stream the object's body (with a Range where asked) in chunks, never the whole
object in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from app.storage.base import MediaStore, check_key, check_part

_MISSING = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"PreconditionFailed"}
# Another conditional write of the same key is in flight (S3 answers 409): wait and look.
_IN_FLIGHT = {"ConditionalRequestConflict"}
_UNSUPPORTED = {"NotImplemented"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Store(MediaStore):
    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, max_connections: int = 32) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.conditional_puts = True
        # One client per store: boto3 clients are thread-safe (sessions are not).
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(max_pool_connections=max_connections, connect_timeout=5,
                          read_timeout=60, retries={"max_attempts": 5, "mode": "standard"},
                          s3={"addressing_style": "path"} if endpoint_url else None))

    def _blob(self, key: str) -> str:
        return f"{self.prefix}objects/{check_key(key)}"

    def _head(self, name: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                return None
            raise

    # --- blobs -------------------------------------------------------------------------

    def put(self, key: str, source: Path, *, content_type: str) -> bool:
        name = self._blob(key)
        try:
            for attempt in range(5):
                if self._head(name) is not None:
                    return False
                try:
                    self._put_object(name, source, content_type)
                    return True
                except ClientError as exc:
                    if _code(exc) in _EXISTS or _status(exc) == 412:
                        return False
                    if _code(exc) in _IN_FLIGHT and attempt < 4:
                        time.sleep(0.05 * 2 ** attempt)
                        continue
                    if (_code(exc) in _UNSUPPORTED or _status(exc) == 501) \
                            and self.conditional_puts:
                        self.conditional_puts = False
                        continue
                    raise
            raise RuntimeError("the object store kept answering a conflicting write")
        finally:
            source.unlink(missing_ok=True)

    def _put_object(self, name: str, source: Path, content_type: str) -> None:
        extra = {"IfNoneMatch": "*"} if self.conditional_puts else {}
        with source.open("rb") as body:  # streamed from the file, not read into memory
            self.client.put_object(Bucket=self.bucket, Key=name, Body=body,
                                   ContentType=content_type, **extra)

    def exists(self, key: str) -> bool:
        return self._head(self._blob(key)) is not None

    def size(self, key: str) -> int:
        head = self._head(self._blob(key))
        if head is None:
            raise FileNotFoundError(key)
        return int(head["ContentLength"])

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        return self._stream(self._blob(key), start, end, chunk_size)

    def _stream(self, name: str, start: int, end: int | None,
                chunk_size: int) -> Iterator[bytes]:
        ranged = {"Range": f"bytes={start}-{'' if end is None else end}"} \
            if start or end is not None else {}
        try:  # asked now, so a missing object fails before any byte is sent
            body = self.client.get_object(Bucket=self.bucket, Key=name, **ranged)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING or _status(exc) == 404:
                raise FileNotFoundError(name) from None
            raise

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return chunks()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._blob(key))

    def _list(self, prefix: str, delimiter: str | None = None) -> Iterator[dict]:
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"Delimiter": delimiter} if delimiter else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
            yield page

    def keys(self) -> Iterator[tuple[str, float]]:
        start = f"{self.prefix}objects/"
        for page in self._list(start):
            for item in page.get("Contents", []):
                key = item["Key"][len(start):]
                if len(key) == 64:
                    yield key, item["LastModified"].timestamp()

    # --- resumable upload parts ----------------------------------------------------------

    def _uploads(self) -> str:
        return f"{self.prefix}uploads/"

    def _part(self, upload: str, name: str) -> str:
        check_part(upload, name)
        return f"{self._uploads()}{upload}/{name}"

    def put_part(self, upload: str, name: str, source: Path) -> None:
        try:
            with source.open("rb") as body:
                self.client.put_object(Bucket=self.bucket, Key=self._part(upload, name),
                                       Body=body, ContentType="application/octet-stream")
        finally:
            source.unlink(missing_ok=True)

    def read_part(self, upload: str, name: str,
                  chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        return self._stream(self._part(upload, name), 0, None, chunk_size)

    def parts(self, upload: str) -> list[tuple[str, float]]:
        check_part(upload)
        start = f"{self._uploads()}{upload}/"
        return [(item["Key"][len(start):], item["LastModified"].timestamp())
                for page in self._list(start) for item in page.get("Contents", [])]

    def part_uploads(self) -> Iterator[tuple[str, float]]:
        newest: dict[str, float] = {}
        start = self._uploads()
        for page in self._list(start):
            for item in page.get("Contents", []):
                upload = item["Key"][len(start):].split("/", 1)[0]
                newest[upload] = max(newest.get(upload, 0.0), item["LastModified"].timestamp())
        yield from newest.items()

    def delete_parts(self, upload: str, names: list[str] | None = None) -> None:
        check_part(upload)
        if names is None:
            names = [name for name, _ in self.parts(upload)]
        keys = [self._part(upload, name) for name in names]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
