"""Background jobs' leases: one row per periodic job, so that however many worker
processes run, each run of a job is claimed by exactly one of them."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.common import utc_field


class JobLease(SQLModel, table=True):
    __tablename__ = "job_leases"
    job: str = Field(max_length=40, primary_key=True)
    # Who holds the job while it runs, and until when (a crashed holder's lease runs out).
    holder: str | None = Field(default=None, max_length=80)
    leased_until: datetime | None = utc_field(nullable=True)
    last_finished_at: datetime | None = utc_field(nullable=True)
