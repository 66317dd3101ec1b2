"""Settings: every knob is an environment variable prefixed CHILDVOICE_, with a working default."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHILDVOICE_", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname",
    )
    media_root: Path = Path("./media")

    secret_key: str | None = Field(
        default=None,
        description="Signs staff tokens. When unset, a random key is made once and kept in "
        "data_dir/secret_key (fine for one machine; set it explicitly when scaling out).",
    )
    access_token_minutes: int = 60
    capture_token_hours: int = 6

    # argon2id cost; the defaults are argon2-cffi's RFC 9106 low-memory profile.
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4

    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    demo_password: str | None = Field(default=None, description="Password for the demo "
                                      "accounts; random when unset.")

    # Offline-first capture (issue 4).
    device_offline_hours: int = Field(default=72, ge=1, description="How long an enrolled "
                                      "tablet may start sessions offline after it last "
                                      "reached the server.")
    sync_batch_max_items: int = Field(default=500, ge=1, le=5000)

    page_size_default: int = 50
    plan_latest_default: int = 10
    plan_latest_max: int = 50

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'childvoice.db').as_posix()}"

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(48))
        return key_file.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
