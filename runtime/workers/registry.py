"""Which worker implements each worker kind, per backend."""

from __future__ import annotations

from typing import Any

from .base import Worker

BACKENDS = ("offline", "openai", "hf")


def workers_for(backend: str, **options: Any) -> dict[str, Worker]:
    """kind → worker. Imports are local so that a backend's dependencies load only when used.

    `options` go to the model backend (`runtime.backends.make_backend`: base_url, model,
    concurrency, request_timeout, max_retries, ledger) and `prompt_dirs` (where templates'
    includes are found); the offline backend has no model and takes none of them."""
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
    if backend in ("openai", "hf"):
        from .llm.workers import llm_workers

        return llm_workers(backend, **options)
    raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
