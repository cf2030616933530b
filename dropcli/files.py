"""The one safe way dropcli writes and reads a file in a folder others may share.

Writing: a new file beside the target (created with O_EXCL | O_NOFOLLOW, so never through a link someone
planted), fsync, then rename over the target (which replaces a link at the target itself, never what it
points to). A crash or a full disk leaves the old file or the new one, never half of one, and the error
names the file. Reading: only regular files of a bounded size (a FIFO planted in a shared folder would
block a read forever).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


def write_atomically(path: Path, content: str | bytes, mode: int | None = None) -> None:
    """Temporary file, fsync, rename. On any error (a full disk) the temporary file is removed. The
    temporary file is created new (never through a link someone planted there); `mode` is applied to it
    before anything is written."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open_new(partial) as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), os.fstat(handle.fileno()).st_mode & mode)
            handle.write(content.encode() if isinstance(content, str) else content)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)  # rename replaces a link at `path` itself, never what it points to
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise naming(error, path) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def naming(error: OSError, path: Path) -> OSError:
    """`error` with the file it is about: a write to a full disk raises ENOSPC without a file name, and
    'a file: No space left on device' helps nobody. A name it already has (the temporary file's) becomes
    the target's, which is the one the user knows."""
    if error.filename is not None and Path(error.filename).name not in (path.name, f".{path.name}.partial"):
        return error
    return type(error)(error.errno, error.strerror or str(error), str(path))


def open_new(path: Path):
    """A binary file created here and now: whatever was at `path` (a planted symbolic link, a stale
    temporary file) is removed first, and O_EXCL | O_NOFOLLOW refuse anything that appears meanwhile."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # removes a link itself, never its target
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666), "wb")


def read_regular(path: Path, limit: int) -> str:
    """A text file that is a regular file of at most `limit` bytes (a FIFO planted in a shared folder would
    block a read forever); ValueError otherwise, FileNotFoundError when missing."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise ValueError(f"{path.name}: not a regular file of at most {limit} bytes")
        return handle.read(limit + 1).decode("utf-8")
