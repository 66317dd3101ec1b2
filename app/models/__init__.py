"""Every table, imported so SQLModel.metadata (and so Alembic) knows them all."""

from app.models.audit import AuditChainHead, AuditCheckpoint, AuditEvent
from app.models.board import Board, BoardAsset, BoardVersion, ChildBoardPhoto
from app.models.capture import CaptureSession, VoiceEntry
from app.models.child import Allocation, Child
from app.models.consent import Consent
from app.models.jobs import JobLease
from app.models.media import Media, MediaFile
from app.models.plan import PlanSection, PlanVersion
from app.models.retention import RetentionRun
from app.models.safeguarding import SafeguardingAlert, WebhookDelivery
from app.models.staff import (OidcLogin, PasswordReset, RefreshToken, SignInThrottle,
                              StaffSession, Team, User)
from app.models.sync import Device, SyncReceipt
from app.models.upload import Upload

__all__ = ["AuditChainHead", "AuditCheckpoint", "AuditEvent", "Allocation", "Board",
           "BoardAsset", "BoardVersion", "CaptureSession", "Child", "ChildBoardPhoto",
           "Consent", "Device", "JobLease", "Media", "MediaFile", "OidcLogin", "PasswordReset",
           "PlanSection", "PlanVersion", "RefreshToken", "RetentionRun", "SafeguardingAlert",
           "SignInThrottle", "StaffSession", "SyncReceipt", "Team", "Upload", "User",
           "VoiceEntry", "WebhookDelivery"]
