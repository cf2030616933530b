"""Ownership of run and sweep folders: one writer at a time, even across machines sharing the folder.

A folder is owned by whoever holds an exclusive `flock` on its `.lock` file. The lock dies with its
process (kill -9 included), so a crash never leaves a folder locked; the file itself stays (deleting it
while another process waits on it would let two writers in). After taking the lock the owner writes who it
is into the file, so a second writer can be told who holds it.

flock is per open file: a process that opens the lock file again (to ask who holds it) does not drop its
own lock, unlike POSIX record locks. On NFS, Linux emulates flock with NFS byte-range locks, so two
machines exclude each other; on file systems mounted without lock support (some Lustre/GPFS set-ups:
`localflock`) two machines do not see each other's locks. The README says so.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

LOCK_NAME = ".lock"
HOLDER_BYTES = 300  # what is read back of a holder line: the file may have been written by anyone


class FolderBusy(Exception):
    """Another process owns the folder."""

    def __init__(self, folder: Path, holder: str):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is in use by {holder}; wait for it to end, or stop it first")


@dataclass
class FolderLock:
    folder: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __del__(self) -> None:  # a lock nobody refers to any more is released, not leaked
        self.release()

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(folder: Path, wait: bool = False, name: str = LOCK_NAME) -> FolderLock:
    """Own `folder` (which must exist) or raise FolderBusy naming the owner. Never blocks for long: a
    `holder_of` that holds the lock shared for an instant is waited out (three tries, 20 ms apart). With
    `wait`, waits for the owner to end instead (an export into a target another export is writing).
    `name`: the lock file (a store's lock beside it, when the folder is not ours alone)."""
    fd = open_lock_file(folder, os.O_RDWR | os.O_CREAT, name)
    if wait:
        fcntl.flock(fd, fcntl.LOCK_EX)
    for attempt in range(0 if wait else 3):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                os.close(fd)
                raise
            if attempt == 2:
                os.close(fd)
                raise FolderBusy(folder, holder_of(folder) or "another process") from None
            time.sleep(0.02)
    try:
        me = f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now().isoformat(timespec='seconds')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds all the same, the holder just cannot say who it is
    return FolderLock(folder, fd)


def open_lock_file(folder: Path, flags: int, name: str = LOCK_NAME) -> int:
    """The lock file, never through a link, and only if it is a regular file: a FIFO planted there would
    block an open (O_NONBLOCK) or a read forever."""
    fd = os.open(folder / name, flags | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(folder / name))
    return fd


def holder_of(folder: Path) -> str | None:
    """Who owns `folder`, or None when nobody does (asked without taking the lock for long)."""
    try:
        fd = open_lock_file(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            text = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace")
            return " ".join(text.split()) or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
