"""The signals that stop a charon process cleanly, whatever the command."""

from __future__ import annotations

import signal


def stop_signals(*always: signal.Signals) -> tuple[signal.Signals, ...]:
    """``always``, and SIGHUP (a closed terminal or SSH session) unless the process was
    started ignoring it: under ``nohup`` a closed terminal must not stop it. Asked at
    the time of listening, since whoever started the process decided."""
    ignored = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    return always if ignored else (*always, signal.SIGHUP)
