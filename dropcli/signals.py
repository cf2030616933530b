"""How a run is stopped from outside: Ctrl-C (KeyboardInterrupt) or SIGTERM (`kill`, a machine shutting
down, a scheduler's stop). Both end the run `interrupted` with a reason, never a stale `running`.

submitit's tasks are left alone: there, SIGUSR2/SIGTERM belong to submitit's requeue machinery.
"""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A KeyboardInterrupt, so every `except KeyboardInterrupt` path also handles it."""


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises Terminated in the main thread (call from the CLI only)."""
    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def interruption_reason(error: BaseException) -> str:
    return "stopped by SIGTERM" if isinstance(error, Terminated) else "stopped by the user (Ctrl-C)"
