"""Helpers for the media tests: samples, uploads, and what the media root and tables hold."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av
from sqlalchemy import text

from tests.support import Api, World

SAMPLES = Path(__file__).parent / "samples"
AUDIO_SAMPLES = ["voice_ipad.m4a", "voice_chrome.webm", "voice_android.ogg", "voice.mp3",
                 "voice.wav"]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def form(kind: str, **kw) -> dict:  # noqa: ANN003
    body = {"kind": kind, "client_id": str(uuid.uuid4()),
            "captured_at": datetime.now(timezone.utc).isoformat()}
    return body | {k: str(v) for k, v in kw.items()}


def upload(api: Api, session_id: str, data: bytes, kind: str = "photo",
           filename: str = "upload.bin", fields: dict | None = None,
           content_type: str = "application/octet-stream"):  # noqa: ANN201
    fields = fields or form(kind)
    return api.post(f"/sessions/{session_id}/media", data=fields,
                    files={"file": (filename, data, content_type)})


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} \
        if root.exists() else set()


def stored(app) -> set[str]:  # noqa: ANN001
    """What the media store and this process's staging area hold now, whichever the store:
    `objects/<key>` per blob, `uploads/<upload>/<part>` per upload part, `tmp/...` per file
    being staged (the staging areas' lock files are not media)."""
    store = app.state.media_store
    names = {f"objects/{key}" for key, _ in store.keys()}
    names |= {f"uploads/{upload}/{part}" for upload, _ in store.part_uploads()
              for part, _ in store.parts(upload)}
    names |= {f"tmp/{p}" for p in files_under(app.state.settings.media_root / "tmp")
              if not p.endswith(".lock")}
    return names


def empty_store_like(app, root: Path):  # noqa: ANN001, ANN201
    """A store of the same kind as the app's, empty: local files under `root`, or a fresh
    prefix of the run's bucket."""
    from app.storage import LocalDiskStore

    settings = app.state.settings
    if settings.media_store != "s3":
        return LocalDiskStore(root)
    from app.storage.s3 import S3Store

    return S3Store(bucket=settings.s3_bucket, prefix=f"{uuid.uuid4().hex}/",
                   endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                   access_key_id=settings.s3_access_key_id,
                   secret_access_key=settings.s3_secret_access_key)


def blob_keys(app) -> set[str]:  # noqa: ANN001
    return {key for key, _ in app.state.media_store.keys()}


def blob_bytes(app, key: str) -> bytes:  # noqa: ANN001
    return b"".join(app.state.media_store.open_range(key))


def upload_parts(app, url: str) -> set[str]:  # noqa: ANN001
    """The parts the store keeps for a resumable upload (named by its id)."""
    return {name for name, _ in app.state.media_store.parts(uuid.UUID(url.rsplit("/", 1)[-1]).hex)}


def settings_env(monkeypatch, settings) -> None:  # noqa: ANN001
    """The test run's settings as the CLI reads them: from the environment."""
    from app.core.config import get_settings

    env = {"DATABASE_URL": settings.resolved_database_url, "DATA_DIR": str(settings.data_dir),
           "MEDIA_ROOT": str(settings.media_root), "MEDIA_STORE": settings.media_store,
           "SECRET_KEY": settings.secret_key}
    for name in ("bucket", "prefix", "endpoint_url", "region", "access_key_id",
                 "secret_access_key"):
        value = getattr(settings, f"s3_{name}")
        if value is not None:
            env[f"S3_{name.upper()}"] = value
    for name, value in env.items():
        monkeypatch.setenv(f"CHILDVOICE_{name}", value)
    get_settings.cache_clear()


def row_counts(app) -> dict[str, int]:  # noqa: ANN001
    with app.state.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("voice_entries", "media", "media_files")}


class Snapshot:
    """What the media root and the media tables hold now, to show nothing was added."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
        self.root = app.state.settings.media_root
        self.files = stored(app)
        self.rows = row_counts(app)

    def assert_unchanged(self) -> None:
        assert stored(self.app) == self.files
        assert row_counts(self.app) == self.rows


def multipart(fields: dict[str, str], data: bytes | None, *, filename: str = "upload.bin",
              file_first: bool = False, boundary: str = "cvboundary1234") -> tuple[bytes, str]:
    """A multipart body built by hand, to control the order of its parts."""
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + value.encode() + b"\r\n")
    if data is not None:
        file_part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
        parts.insert(0, file_part) if file_first else parts.append(file_part)
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def decoded_seconds(data: bytes) -> float:
    """Decode every frame of a recording with PyAV; how long it lasts."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def make_tagged_audio(fmt: str, codec: str, seconds: float = 1.0) -> bytes:
    """A short silent recording whose container carries a title, artist, comment and a
    location, as a phone might write them."""
    meta = {"title": "Synthetic title", "artist": "Synthetic Person", "comment": "synthetic "
            "comment", "location": "+51.5000-000.1000/"}
    buffer = io.BytesIO()
    rate = 48000
    with av.open(buffer, "w", format=fmt) as out:
        out.metadata.update(meta)
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.metadata.update(meta)
        done, total = 0, int(seconds * rate)
        while done < total:
            count = min(960, total - done)
            frame = av.AudioFrame(format="s16", layout="mono", samples=count)
            frame.planes[0].update(bytes(2 * count))
            frame.sample_rate, frame.pts, frame.time_base = rate, done, Fraction(1, rate)
            done += count
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def media_session(world: World) -> tuple[dict, Api]:
    session = world.open_session()
    return session, world.capture(session)


def asgi_post(app, path: str, token: str | None, chunks: list[bytes], content_type: str, *,  # noqa: ANN001
              disconnect: bool = False, headers: dict[str, str] | None = None,
              ) -> tuple[list[dict], int]:
    """POST a body chunk by chunk straight to the ASGI app, as a server would hand it over;
    then the client goes away (`disconnect`) or the body ends. Returns what the app sent
    and how many chunks it read."""
    sent: list[dict] = []
    pending = list(chunks)
    consumed = [0]

    async def receive() -> dict:
        if pending:
            consumed[0] += 1
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk,
                    "more_body": bool(pending) or disconnect}
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # pragma: no cover - nothing more will come
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()),
                         *([(b"authorization", f"Bearer {token}".encode())] if token else []),
                         *[(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]]}
    asyncio.run(app(scope, receive, send))
    return sent, consumed[0]
