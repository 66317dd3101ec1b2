"""Settings: every knob is an environment variable prefixed CHILDVOICE_, with a working default."""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


# Passwords seen in examples and quick starts: never acceptable for a production admin.
_WELL_KNOWN_PASSWORDS = {"admin", "password", "changeme", "change-me", "change me",
                         "childvoice", "correct horse battery staple"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHILDVOICE_", extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development", description="production refuses to start with unsafe "
        "defaults (see production_problems).")
    migrate_on_start: bool = Field(default=True, description="`serve` brings the schema to "
                                   "head first; turn off when `childvoice migrate` is a "
                                   "separate deploy step.")

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    media_root: Path = Path("./media")
    media_store: Literal["local", "s3"] = Field(
        default="local", description="Where media bytes live: `local` (files under "
        "media_root) or `s3` (an S3-compatible bucket; media_root then holds only one "
        "request's temporary files, and need not be shared between API processes).")
    s3_bucket: str | None = Field(default=None, description="The bucket (media_store=s3).")
    s3_prefix: str = Field(default="", description="Prefix of every object key, e.g. "
                           "`childvoice/` to share a bucket.")
    s3_endpoint_url: str | None = Field(default=None, description="The S3 API's URL for a "
                                        "non-AWS server (MinIO, Ceph, …); unset for AWS.")
    s3_region: str | None = None
    s3_access_key_id: str | None = Field(default=None, description="Unset: boto3's own "
                                         "chain (environment, instance role, …).")
    s3_secret_access_key: str | None = None

    secret_key: str | None = Field(
        default=None,
        description="Signs staff tokens. When unset, a random key is made once and kept in "
        "data_dir/secret_key (fine for one machine; set it explicitly when scaling out).",
    )
    access_token_minutes: int = Field(default=15, description="Staff access tokens are "
                                      "short-lived; a refresh token gets a new one.")
    staff_session_hours: int = Field(default=12, description="How long one sign-in lasts "
                                     "(refresh tokens stop working after it).")
    capture_token_hours: int = 6

    # Sign-in throttling, kept in the database. Failures count per account from one address
    # (that address is locked out of that account) and per account from anywhere; never per
    # address alone, so one person's typos never lock out a whole council behind one NAT.
    signin_account_max_failures: int = Field(default=5, description="Failures for one "
                                             "account from one address before that address "
                                             "is locked out of it.")
    signin_account_any_address_max_failures: int = Field(
        default=20, description="Failures for one account from all addresses together "
        "before the account is locked (an admin can unlock it).")
    # NoDecode: written as "10.0.0.5,10.0.1.0/24" (or a JSON list) in the environment.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[], description="Addresses or networks (CIDR) of the reverse proxies whose "
        "X-Forwarded-For / Forwarded headers name the client, comma-separated or a JSON "
        "list; none by default, so a client cannot pick its own address.")
    password_reset_hours: int = Field(default=24, ge=1, description="How long an admin's "
                                      "password reset code works.")
    signin_failure_window_minutes: int = 15
    signin_lockout_minutes: int = Field(default=5, description="First lock-out; each "
                                        "further failure doubles it, up to the maximum.")
    signin_lockout_max_minutes: int = 24 * 60
    password_min_length: int = 12

    # argon2id cost; the defaults are argon2-cffi's RFC 9106 low-memory profile.
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4

    # Single sign-on with the council's OpenID Provider (see docs/sso.md).
    local_passwords_enabled: bool = Field(default=True, description="Staff may sign in "
                                          "with a local password; turn off when everyone "
                                          "signs in through the council's SSO.")
    oidc_issuer: str | None = Field(default=None, description="The OpenID Provider's issuer "
                                    "URL; SSO is off when unset.")
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = Field(default=None, description="This service's callback "
                                          "as registered with the provider; default "
                                          "public_base_url + /api/v1/auth/oidc/callback.")
    oidc_scopes: str = "openid email profile"
    oidc_groups_claim: str = "groups"
    oidc_group_mapping: dict[str, dict[str, str]] = Field(
        default={}, description='Group -> {"role": ..., "team": team name} (JSON). A user '
        "in no mapped group is refused; in several, the first mapped group in the ID "
        "token's list wins.")
    oidc_login_minutes: int = Field(default=10, ge=1, description="How long a sign-in may "
                                    "take between the redirect and the callback.")
    oidc_http_timeout_seconds: float = 10.0

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    demo_password: str | None = Field(default=None, description="Password for the demo "
                                      "accounts; random when unset.")

    # Where links in notifications point (the web app or API the council's staff use).
    public_base_url: str = "http://127.0.0.1:8000"

    # Safeguarding. A mat placement is a signal when a marked button, or a sensitive topic,
    # is placed under one of the negative scale values (compared case-insensitively).
    safeguarding_negative_scale_values: list[str] = [
        "don't like", "do not like", "dont like", "no", "not ok", "not okay", "unhappy",
        "sad", "scared", "bad", "hate"]
    safeguarding_sensitive_topics: list[str] = [
        "home", "bedtime", "bath time", "bathroom", "family", "touch", "secret", "secrets"]
    alert_escalation_minutes: int = Field(default=120, description="An alert not "
                                          "acknowledged in this time escalates to the manager.")
    webhook_url: str | None = Field(default=None, description="The council's endpoint for "
                                    "alert notifications; none are sent when unset.")
    webhook_secret: str | None = Field(default=None, description="The Standard Webhooks "
                                       "signing secret (`whsec_` and base64 of 24 to 64 "
                                       "random bytes); required with webhook_url.")
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = 20
    webhook_backoff_seconds: int = 30
    webhook_backoff_max_seconds: int = 3600
    background: Literal["auto", "serve", "worker"] = Field(
        default="auto", description="Where background work (webhooks, escalation, "
        "retention, media sweeps, upload expiry, audit checkpoints) runs: `serve` in one "
        "thread of the API process; `worker` only in `childvoice worker`; `auto` is `serve` "
        "on the embedded SQLite default and `worker` on PostgreSQL.")
    outbox_poll_seconds: float = 15.0
    outbox_batch_size: int = Field(default=10, ge=1, le=100, description="Deliveries one "
                                   "worker claims at a time; its lease covers them all "
                                   "timing out.")

    # Retention in days, per kind. Audit events are never removed.
    # photo/audio: media past this age (wired with the media store); webhook_delivery:
    # delivered or failed notifications; sign_in: failed sign-in counters; staff_session:
    # ended sign-ins and their refresh tokens; upload: resumable uploads that ended
    # (stored, refused, expired, terminated); sync_receipt: what the tablets' items were
    # (keep it well past device_offline_hours).
    retention_days: dict[str, int] = {"photo": 730, "audio": 730, "webhook_delivery": 90,
                                      "sign_in": 30, "staff_session": 30, "upload": 30,
                                      "sync_receipt": 400}
    retention_interval_hours: float = Field(default=24, ge=0, description="How often the "
                                            "background worker applies retention (0: only "
                                            "`childvoice retention --apply`).")

    # Audit checkpoints: the chains' heads, signed (Ed25519), so that events cut off the end
    # of a chain are found. The key is base64 of a 32-byte Ed25519 private key
    # (`childvoice audit new-key` makes one).
    audit_signing_key: str | None = Field(
        default=None, description="Signs audit checkpoints. When unset on the embedded "
        "SQLite default, a key is made once and kept in data_dir/audit_signing_key; on "
        "PostgreSQL it must be set (the same on every node).")
    audit_checkpoint_minutes: float = Field(default=15, ge=0, description="How often the "
                                            "background worker signs a checkpoint (0: only "
                                            "`childvoice audit checkpoint`).")

    # Offline-first capture (issue 4).
    device_offline_hours: int = Field(default=72, ge=1, description="How long an enrolled "
                                      "tablet may start sessions offline after it last "
                                      "reached the server.")
    sync_batch_max_items: int = Field(default=500, ge=1, le=5000)
    clock_tolerance_seconds: int = Field(default=300, ge=0, le=86400, description="How far "
                                         "a tablet's clock may be off the server's (after "
                                         "correcting by its measured offset) and its times "
                                         "still decide consent and session windows; a time "
                                         "further ahead is refused.")
    upload_expiry_hours: int = Field(default=24, ge=1, description="An unfinished resumable "
                                     "upload expires this long after its last accepted "
                                     "bytes; its bytes are then removed.")
    upload_cleanup_seconds: float = Field(default=120, ge=0, description="How often the "
                                          "background worker removes expired uploads' bytes "
                                          "and what crashed processes left in media_root/tmp "
                                          "(0: never; `childvoice cleanup` does it on demand).")
    media_sweep_seconds: float = Field(default=3600, ge=0, description="How often the "
                                       "background worker removes what a crash left in the "
                                       "media root (0: only `childvoice media-sweep`).")

    page_size_default: int = 50

    # PostgreSQL connections, per API process (see docs/deploy.md for sizing).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=20, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(default=30, gt=0)
    db_pool_recycle_seconds: int = Field(default=1800, ge=-1, description="Connections "
                                         "older than this are replaced (-1: never); cheaper "
                                         "than a liveness ping on every checkout.")
    db_pool_pre_ping: bool = Field(default=False, description="Ping each connection as it "
                                   "is checked out (one extra round trip per request).")
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="PostgreSQL "
                                         "statement_timeout (0: none).")
    db_lock_timeout_ms: int = Field(default=10_000, ge=0, description="PostgreSQL "
                                    "lock_timeout (0: none).")

    # Logs (see core/logging.py): JSON lines by default; never child data.
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="json", pattern="^(json|console)$")
    access_log: bool = Field(default=True, description="One line per request: method, "
                             "route template, status, duration, request id.")
    metrics_token: str | None = Field(default=None, description="Bearer token Prometheus "
                                      "sends to /metrics; metrics are off when unset.")

    # Request bodies that are parsed whole (JSON, forms): refused with 413 while they are
    # read, before any parsing. Uploads stream to disk and have the media limits instead.
    body_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="Largest JSON "
                                "or form body (413 past it).")
    sync_body_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="Largest "
                                     "sync batch body (413 past it).")

    # Board import (.obf / .obz): limits that keep a hostile package from costing more than
    # a real one. Real packages from AAC apps are a few MB with a few hundred members.
    board_upload_max_bytes: int = 50 * 1024 * 1024
    board_obf_max_bytes: int = 10 * 1024 * 1024       # one board's JSON (data: URIs inside)
    board_max_boards: int = 500
    board_zip_max_members: int = 2000
    board_zip_max_member_bytes: int = 20 * 1024 * 1024  # declared and actual, uncompressed
    board_zip_max_total_bytes: int = 200 * 1024 * 1024  # all members, uncompressed
    board_zip_max_ratio: int = 100                       # uncompressed / compressed, per member
    board_zip_ratio_floor_bytes: int = 1024 * 1024       # members smaller than this skip the ratio
    # Imported pictures and sounds then go through the media pipeline (see docs/media.md)
    # with these limits; a personal board's photos have the media upload limits.
    board_image_max_bytes: int = 10 * 1024 * 1024
    board_image_max_pixels: int = 25_000_000
    board_sound_max_bytes: int = 10 * 1024 * 1024
    board_sound_max_seconds: float = 120                 # a button's sound, not a recording
    plan_latest_default: int = 10
    signed_url_seconds: int = Field(default=300, ge=10, le=86400, description="How long "
                                    "the signed links a page puts on its pictures and "
                                    "recordings work (they are made afresh with each page).")
    plan_latest_max: int = 50

    # Handover, timeline and the voice report (see README, "Reading what children said").
    voice_not_heard_days: int = Field(default=42, ge=1, description="A child whose own "
                                      "voice was last captured longer ago than this is "
                                      "flagged 'not heard' in the voice report.")
    voice_report_period_days: int = Field(default=90, ge=1, le=3660, description="The "
                                          "voice report's period when `since` is not given.")
    handover_recent_entries: int = Field(default=300, ge=10, le=5000, description="How many "
                                         "of a child's newest entries the handover reads "
                                         "for 'what matters now' and 'what changed'.")
    handover_changed_days: int = Field(default=180, ge=1, description="A change of answer "
                                       "this recent is shown under 'what changed lately'.")
    handover_visits: int = Field(default=5, ge=1, le=50, description="How many of the last "
                                 "visits the handover shows.")
    visit_entries_shown: int = Field(default=50, ge=1, le=500, description="At most this "
                                     "many entries are shown per visit (handover, timeline); "
                                     "the rest are linked.")

    # Photos and audio (see docs/media.md). Sizes are bytes; MiB = 1024 * 1024.
    media_photo_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1,
                                       description="Largest photo upload (413 past it).")
    media_audio_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1,
                                       description="Largest audio upload (413 past it).")
    media_photo_max_pixels: int = Field(default=50_000_000, ge=1, description=
                                        "Largest photo, width x height, checked from its "
                                        "header before any pixel is decoded.")
    media_audio_max_seconds: float = Field(default=30 * 60, gt=0,
                                           description="Longest audio recording.")
    media_thumbnail_px: int = Field(default=320, ge=16, le=2048)
    media_jpeg_quality: int = Field(default=90, ge=30, le=100)
    media_jobs: int = Field(default=2, ge=1, description="Media jobs (decode, clean, "
                            "transcode) run at once per process; the rest wait their turn.")
    bench_endpoints: bool = Field(default=False, description="Mount the bare streaming "
                                  "endpoint bench/media.py compares against. Never in "
                                  "production.")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: str | list[str]) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else \
                [part for part in text.split(",") if part.strip()]
        entries = [str(entry).strip() for entry in value]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or a network "
                                 "(CIDR)") from None
        return entries

    @field_validator("oidc_group_mapping")
    @classmethod
    def _group_targets(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        roles = ("social_worker", "team_manager", "admin")
        for group, target in value.items():
            if target.get("role") not in roles:
                raise ValueError(f"oidc_group_mapping[{group!r}]: role must be one of "
                                 f"{', '.join(roles)}")
            if target["role"] != "admin" and not target.get("team"):
                raise ValueError(f"oidc_group_mapping[{group!r}]: a {target['role']} needs "
                                 "a team (its name)")
        return value

    @property
    def is_embedded(self) -> bool:
        """The single-machine SQLite default (as opposed to a shared database server)."""
        return self.resolved_database_url.startswith("sqlite")

    @property
    def background_in_serve(self) -> bool:
        if self.background == "auto":
            return self.is_embedded
        return self.background == "serve"

    def resolved_audit_signing_key(self) -> str:
        if self.audit_signing_key:
            return self.audit_signing_key
        if not self.is_embedded:
            raise ValueError("CHILDVOICE_AUDIT_SIGNING_KEY is not set: with a shared database "
                             "every node must sign audit checkpoints with the same key "
                             "(`childvoice audit new-key` makes one)")
        return self._kept_secret("audit_signing_key", lambda: base64.b64encode(
            secrets.token_bytes(32)).decode())

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'childvoice.db').as_posix()}"

    def production_problems(self) -> list[str]:
        """Why this configuration must not run in production (empty when it may)."""
        if self.env != "production":
            return []
        problems = []
        if not self.secret_key:
            problems.append("CHILDVOICE_SECRET_KEY is not set (a generated key is only for "
                            "one development machine)")
        elif len(self.secret_key) < 32:
            problems.append("CHILDVOICE_SECRET_KEY is shorter than 32 characters")
        password = self.bootstrap_admin_password
        if password is not None and (password.strip().lower() in _WELL_KNOWN_PASSWORDS
                                     or len(password) < self.password_min_length):
            problems.append("CHILDVOICE_BOOTSTRAP_ADMIN_PASSWORD is a default or too short "
                            "a password")
        if self.demo_password:
            problems.append("CHILDVOICE_DEMO_PASSWORD is set (demo data is not for "
                            "production)")
        if self.bench_endpoints:
            problems.append("CHILDVOICE_BENCH_ENDPOINTS is on (a debug endpoint)")
        if not self.audit_signing_key:
            problems.append("CHILDVOICE_AUDIT_SIGNING_KEY is not set (audit checkpoints must "
                            "be signed with the council's own key; `childvoice audit new-key`)")
        return problems

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        return self._kept_secret("secret_key", lambda: secrets.token_urlsafe(48))

    def _kept_secret(self, name: str, make: Callable[[], str]) -> str:
        """A secret made once and kept, owner-only, in data_dir."""
        from app.storage.base import private_dir

        private_dir(self.data_dir)
        key_file = self.data_dir / name
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(make())
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
