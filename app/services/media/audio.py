"""Check and clean an audio recording: the one function every audio path calls (uploads,
resumable uploads): `check_and_clean_audio(source, workdir, limits)`.

- Probed with PyAV (libavformat), from the bytes only, limited to the containers tablets
  record: MP4/M4A, WebM, Ogg, MP3, WAV. The demuxers allowed are whitelisted and only the
  `file` protocol may be opened, so a playlist cannot make us read other files.
- Refused: anything that is not one of those containers (415), no audio stream, video,
  an accepted container holding a codec we do not take, undecodable data (422), and
  recordings longer than the limit (422, stopped as soon as it is passed).
- `stored`: the recording's own packets remuxed into a fresh container of the same kind,
  so no container metadata (titles, artist, comments, device, location) is carried over.
- `playback`: AAC-LC in M4A (plays in every current browser, Safari included), made in the
  same pass; an AAC recording in MP4 is already that and is not transcoded again (its
  first seconds are decoded, to check it is audio we can read; the rest is copied).

No database, no HTTP: it reads one local file and writes new ones into `workdir`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.audio.resampler import AudioResampler

from app.core.errors import Invalid, UnsupportedMediaType
from app.services.media.photos import CleanFile

ACCEPTED_AUDIO = ("AAC in MP4/M4A, Opus in WebM, Opus or Vorbis in Ogg, MP3, or PCM in WAV")

# libavformat demuxer name -> our name, the muxer for the clean copy, its content type.
_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("mp4", "ipod", "audio/mp4"),
    "matroska,webm": ("webm", "webm", "audio/webm"),
    "ogg": ("ogg", "ogg", "audio/ogg"),
    "mp3": ("mp3", "mp3", "audio/mpeg"),
    "wav": ("wav", "wav", "audio/wav"),
}
_CODECS = {
    "mp4": {"aac"},
    "webm": {"opus", "vorbis"},
    "ogg": {"opus", "vorbis"},
    "mp3": {"mp3"},
    "wav": {"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_s16be"},
}
_INPUT_OPTIONS = {"format_whitelist": ",".join(_CONTAINERS), "protocol_whitelist": "file"}
# bitexact: no "encoder: Lavf…" tags; the ID3v2 header of MP3 is not written at all.
_OUTPUT_OPTIONS = {"fflags": "+bitexact"}
_MUXER_OPTIONS = {"ipod": {"movflags": "+faststart"}, "mp3": {"write_id3v2": "0",
                                                              "write_xing": "1"}}
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000}
PLAYBACK_TYPE = "audio/mp4"
# Packets decoded to check a recording that needs no transcode (AAC in MP4): ~5 s of AAC.
VALIDATE_PACKETS = 250


@dataclass(frozen=True)
class AudioLimits:
    max_seconds: float = 30 * 60


@dataclass
class CleanAudio:
    format: str            # mp4 | webm | ogg | mp3 | wav
    codec: str             # aac | opus | vorbis | mp3 | pcm_…
    channels: int
    sample_rate: int
    duration_s: float
    files: list[CleanFile] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _not_audio() -> UnsupportedMediaType:
    return UnsupportedMediaType(f"This is not a supported audio file. Send {ACCEPTED_AUDIO}.",
                                slug="unsupported-audio", title="Not an accepted recording",
                                accepted=sorted(n for n, _, _ in _CONTAINERS.values()))


def is_recording(source: Path) -> bool:
    """Whether the bytes are a sound recording in an accepted container (headers only)."""
    try:
        with av.open(str(source), options=_INPUT_OPTIONS) as inp:
            cover = av.stream.Disposition.attached_pic  # an album cover is not video
            return inp.format.name in _CONTAINERS and \
                any(s.type == "audio" for s in inp.streams) and \
                not any(s.type == "video" and not s.disposition & cover for s in inp.streams)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return False


def _unreadable() -> Invalid:
    return Invalid("The recording could not be read: it may be cut short or damaged.",
                   slug="unreadable-audio", title="Unreadable recording")


def _too_long(limit: float) -> Invalid:
    return Invalid(f"The recording is longer than the limit of {limit / 60:g} minutes.",
                   slug="audio-too-long", title="Recording too long", max_seconds=limit)


def _codec_name(stream: av.audio.stream.AudioStream) -> str:
    name = stream.codec_context.codec.name
    return {"mp3float": "mp3", "libopus": "opus", "libvorbis": "vorbis"}.get(name, name)


def _clear_metadata(stream) -> None:  # noqa: ANN001
    for key in list(stream.metadata):
        del stream.metadata[key]


def check_and_clean_audio(source: Path, workdir: Path,
                          limits: AudioLimits = AudioLimits()) -> CleanAudio:
    """Check the recording at `source` and write its clean files into `workdir`.

    Returns what was learned (codec, channels, duration…) and `stored` and `playback` files
    (the same file when the recording is already AAC in MP4)."""
    timings: dict[str, float] = {"transcode": 0.0}
    started = time.perf_counter()
    try:
        inp = av.open(str(source), options=_INPUT_OPTIONS)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise _not_audio() from None
    with inp:
        name, muxer, content_type = _CONTAINERS.get(inp.format.name, (None, None, None))
        if name is None:
            raise _not_audio()
        streams = list(inp.streams)
        real_video = [s for s in streams if s.type == "video" and
                      not (s.disposition & av.stream.Disposition.attached_pic)]
        audio = [s for s in streams if s.type == "audio"]
        if not audio:
            raise Invalid(f"This file has no sound in it. Send {ACCEPTED_AUDIO}.",
                          slug="no-audio-stream", title="No audio stream")
        if real_video:
            raise UnsupportedMediaType(f"This file holds video. Send a sound recording only: "
                                       f"{ACCEPTED_AUDIO}.", slug="unsupported-audio",
                                       title="Not an accepted recording")
        source_stream = audio[0]
        codec = _codec_name(source_stream)
        if codec not in _CODECS[name]:
            raise UnsupportedMediaType(f"{name.upper()} files holding {codec} are not "
                                       f"accepted. Send {ACCEPTED_AUDIO}.",
                                       slug="unsupported-audio",
                                       title="Not an accepted recording")
        if inp.duration is not None and inp.duration / av.time_base > limits.max_seconds + 1:
            raise _too_long(limits.max_seconds)
        channels = source_stream.codec_context.channels
        rate = source_stream.codec_context.sample_rate
        if not channels or not rate:
            raise _unreadable()
        timings["probe"] = time.perf_counter() - started

        started = time.perf_counter()
        # A WAV holding only its format and samples has nothing to remove: it is kept as
        # sent (no second copy of up to 200 MB); any other chunk means a clean remux.
        passthrough = name == "wav" and _plain_wav(source)
        stored_path = source if passthrough else workdir / f"stored.{name}"
        transcode = not (name == "mp4" and codec == "aac")
        playback_path = workdir / "playback.m4a" if transcode else stored_path
        duration = _remux_and_transcode(inp, source_stream,
                                        None if passthrough else stored_path, muxer,
                                        playback_path if transcode else None,
                                        channels, rate, limits, timings)
        timings["remux"] = time.perf_counter() - started - timings["transcode"]

    files = [CleanFile("stored", stored_path, content_type)]
    files.append(CleanFile("playback", playback_path, PLAYBACK_TYPE))
    return CleanAudio(format=name, codec=codec, channels=channels, sample_rate=rate,
                      duration_s=round(duration, 3), files=files, timings=timings)


def _plain_wav(path: Path) -> bool:
    """A RIFF/WAVE file made of nothing but its `fmt `, `fact` and `data` chunks, with no
    byte after the RIFF chunk: there is no metadata in it to remove."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or \
                int.from_bytes(head[4:8], "little") + 8 != size:
            return False
        position, seen = 12, set()
        while position < size:
            handle.seek(position)
            chunk = handle.read(8)
            if len(chunk) < 8 or chunk[:4] not in (b"fmt ", b"fact", b"data"):
                return False
            seen.add(chunk[:4])
            length = int.from_bytes(chunk[4:8], "little")
            position += 8 + length + (length & 1)
        return position == size and {b"fmt ", b"data"} <= seen


class _NoOutput:
    """Stands in for the clean container when the recording is kept as sent."""

    def mux(self, packet) -> None:  # noqa: ANN001
        pass

    def __enter__(self) -> "_NoOutput":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _remux_and_transcode(inp, source_stream, stored_path: Path | None,  # noqa: ANN001
                         muxer: str, playback_path: Path | None, channels: int, rate: int,
                         limits: AudioLimits, timings: dict[str, float]) -> float:
    """One pass over the packets: each is copied into the clean container (unless the
    recording is kept as sent), and decoded, so damaged data is caught; when a playback
    copy is needed, encoded to AAC too. Decoding counts as transcode time when it feeds
    the playback copy."""
    time_base: Fraction = source_stream.time_base
    first: int | None = None
    last = 0
    decoded_any = False
    out_options = _OUTPUT_OPTIONS | _MUXER_OPTIONS.get(muxer, {})
    try:
        out = _NoOutput() if stored_path is None else \
            av.open(str(stored_path), "w", format=muxer, container_options=out_options)
        with out:
            stored_stream = None
            if stored_path is not None:
                stored_stream = out.add_stream_from_template(source_stream)
                _clear_metadata(stored_stream)
            playback = None
            if playback_path is not None:
                playback = _Playback(playback_path, channels, rate)
            pass_started, muxing, checked = time.perf_counter(), 0.0, 0
            try:
                decoder = source_stream.codec_context
                # The limit in the stream's own ticks, so each packet costs one comparison.
                limit_ticks = float((limits.max_seconds + 1) / time_base)
                timed = playback is not None and stored_stream is not None
                for packet in inp.demux(source_stream):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    pts = packet.pts
                    if pts is not None:
                        if first is None or pts < first:
                            first = pts
                        end = pts + (packet.duration or 0)
                        if end > last:
                            last = end
                            if last - first > limit_ticks:
                                raise _too_long(limits.max_seconds)
                    # Without a playback copy to make, decoding is only a check that this
                    # is audio we can read: the first seconds show it; the rest is copied.
                    if playback is not None or checked < VALIDATE_PACKETS:
                        checked += 1
                        for frame in decoder.decode(packet):
                            decoded_any = True
                            if playback is not None:
                                playback.add(frame)
                    if stored_stream is not None:
                        if timed:
                            t = time.perf_counter()
                        packet.stream = stored_stream
                        out.mux(packet)
                        if timed:
                            muxing += time.perf_counter() - t
                for frame in decoder.decode(None):
                    decoded_any = True
                    if playback is not None:
                        playback.add(frame)
                if playback is not None:
                    playback.close()
                    # The pass (read, decode, resample, encode) is the transcode; only
                    # writing the clean copy is not.
                    timings["transcode"] = time.perf_counter() - pass_started - muxing
            finally:
                if playback is not None:
                    playback.abort()
    except (av.error.FFmpegError, ValueError, OverflowError):
        raise _unreadable() from None
    if not decoded_any or first is None:
        raise _unreadable()
    duration = float((last - first) * time_base)
    if duration > limits.max_seconds:
        raise _too_long(limits.max_seconds)
    return duration


class _Playback:
    """AAC-LC in an M4A with the index at the front, so a browser can start and seek."""

    def __init__(self, path: Path, channels: int, rate: int) -> None:
        self.layout = "mono" if channels == 1 else "stereo"
        self.rate = rate if rate in _AAC_RATES else 48000
        self.out = av.open(str(path), "w", format="ipod",
                           container_options=_OUTPUT_OPTIONS | _MUXER_OPTIONS["ipod"])
        self.stream = self.out.add_stream("aac", rate=self.rate, layout=self.layout)
        self.stream.bit_rate = 64000 if self.layout == "mono" else 128000
        self.resampler = AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self.closed = False

    def add(self, frame) -> None:  # noqa: ANN001
        frame.pts = None
        for converted in self.resampler.resample(frame):
            for packet in self.stream.encode(converted):
                self.out.mux(packet)

    def close(self) -> None:
        for converted in self.resampler.resample(None):
            for packet in self.stream.encode(converted):
                self.out.mux(packet)
        for packet in self.stream.encode(None):
            self.out.mux(packet)
        self.out.close()
        self.closed = True

    def abort(self) -> None:
        if not self.closed:
            try:
                self.out.close()
            except Exception:  # noqa: BLE001 - already failing; the file is discarded
                pass
            self.closed = True
