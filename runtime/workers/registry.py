"""Which worker implements each worker kind, per backend."""

from __future__ import annotations

from .base import Worker

BACKENDS = ("offline",)


def workers_for(backend: str) -> dict[str, Worker]:
    """kind → worker. Imports are local so that a backend's dependencies load only when used."""
    if backend == "offline":
        from .offline.dialog import OfflineDialogSynthesis
        from .offline.intent import OfflineUserIntent
        from .offline.pool import OfflineRandomPool
        from .offline.task_validation import OfflineTaskValidation
        from .offline.trajectory import OfflineModify, OfflineTrajectoryValidation
        from .offline.verification import OfflineVerificationFunction

        found = [OfflineRandomPool(), OfflineUserIntent(), OfflineTaskValidation(),
                 OfflineDialogSynthesis(), OfflineTrajectoryValidation(), OfflineModify(),
                 OfflineVerificationFunction()]
        return {w.kind: w for w in found}
    raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
