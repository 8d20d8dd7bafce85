"""The recordings capability: the ``Recordings`` API (resumable uploads, viewing, legal
hold) and the retention sweep.

Uses ``pin_verifier`` when configured: its customer sessions let a customer at a terminal
watch their own recordings."""

from __future__ import annotations

from datetime import timedelta

from branchline.server.capability import Hub, StartupError
from branchline.server.recordings.service import RecordingService, sweep_forever
from branchline.server.recordings.servicer import SERVICE_NAMES, RecordingsServicer
from branchline.server.recordings.store import ContentStore
from branchline.v1 import recordings_pb2_grpc

# Retention is in days: an hourly sweep deletes within an hour of the limit.
SWEEP_SECONDS = 3600.0
MAX_RETENTION_DAYS = 36600


class RecordingsCapability:
    name = "recordings"

    def setup(self, hub: Hub) -> None:
        settings = hub.settings
        days = settings.recording_retention_days
        if not 0 < days <= MAX_RETENTION_DAYS:
            raise StartupError(
                f"--recording-retention-days: more than 0, at most {MAX_RETENTION_DAYS}, got {days}"
            )
        try:
            store = ContentStore(settings.recordings_dir)
        except OSError as exc:
            raise StartupError(f"--recordings-dir {settings.recordings_dir}: {exc}") from None
        service = RecordingService(hub.engine, store, timedelta(days=days))
        verifier = hub.optional("pin_verifier")
        hub.add_servicer(
            recordings_pb2_grpc.add_RecordingsServicer_to_server,
            RecordingsServicer(service, hub.auth, verifier.sessions if verifier else None),
            *SERVICE_NAMES,
        )
        hub.provide("recordings", service)
        hub.background("retention", lambda: sweep_forever(service, SWEEP_SECONDS))


RECORDINGS = RecordingsCapability()
