"""`python -m dropcli.picture_worker`: draws curves.png for the run folders it is sent, one JSON list of
folders per line on stdin, until stdin closes. A sweep starts one (sweep.PictureWorker) so that pictures
are drawn on another core while the next group trains. A plain subprocess, not multiprocessing: nothing of
the caller's __main__ is imported again, so a user's script without a main guard is safe."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the sweep; this finishes what it was sent
    from dropcli.run_plots import draw_run_curves

    for line in sys.stdin:
        draw_run_curves([Path(folder) for folder in json.loads(line)])
    # every picture is written and closed; the interpreter's teardown (matplotlib, pandas, torch) would keep
    # the waiting sweep ~0.2 s longer for nothing
    os._exit(0)


if __name__ == "__main__":
    main()
