"""How a run is stopped from outside: Ctrl-C (KeyboardInterrupt), SIGTERM (`kill`, a machine shutting down, a
scheduler's stop) or SIGHUP (the terminal closed). All end the run `interrupted` with a reason, never a stale
`running`.

submitit's tasks are left alone: there, SIGUSR2/SIGTERM belong to submitit's requeue machinery.
"""

from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived. A KeyboardInterrupt, so every `except KeyboardInterrupt` path also handles
    it."""

    def __init__(self, name: str = "SIGTERM") -> None:
        super().__init__(name)
        self.name = name


def stop_on_sigterm() -> None:
    """From now on SIGTERM and SIGHUP raise Terminated in the main thread (call from the CLI only)."""
    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    # a closed terminal: a stop like any other, not a death that leaves `running`; under nohup (SIGHUP ignored)
    # the run goes on, as the user asked
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, handler)


def interruption_reason(error: BaseException) -> str:
    if isinstance(error, Terminated):
        return f"stopped by {getattr(error, 'name', 'SIGTERM')}"
    return "stopped by the user (Ctrl-C)"
