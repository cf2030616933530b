"""A TensorBoard event file built in memory: the records TensorBoard's own writer would write, without its
background thread (which prints a traceback of its own on a full disk and leaves a half-written file).
The caller writes the bytes with files.write_atomically, so the file is whole or absent, and a full disk
names it."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterable
from typing import Any


class EventFile:
    """Events collected in memory, in TensorBoard's record format; `name` and `content` once done."""

    def __init__(self) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event = event_pb2.Event
        self.buffer = io.BytesIO()
        self.records = RecordWriter(self.buffer)
        self.created = time.time()
        self.add(self._event(wall_time=self.created, file_version="brain.Event:2"))

    @property
    def name(self) -> str:
        return f"events.out.tfevents.{int(self.created):010d}.{socket.gethostname()}.{os.getpid()}.0"

    def add(self, event: Any) -> None:
        self.records.write(event.SerializeToString())

    def add_summaries(self, summaries: Iterable[Any], step: int | None = None, walltime: float | None = None) -> None:
        for summary in summaries:
            event = self._event(summary=summary, wall_time=time.time() if walltime is None else walltime)
            if step is not None:
                event.step = int(step)
            self.add(event)

    def add_scalar(self, tag: str, value: float, step: int, walltime: float) -> None:
        from torch.utils.tensorboard.summary import scalar

        self.add_summaries([scalar(tag, float(value))], step, walltime)

    @property
    def content(self) -> bytes:
        return self.buffer.getvalue()
