"""Processes dropcli starts run dropcli's own code, never code from the folder they start in, and read
results only from where no one else can write.

`python -m module` (and `python -c`) puts the current folder first on sys.path: run in a shared folder, a
planted `./dropcli/__init__.py` (or `./submitit/`, `./torch/`) would run in the picture worker or in a
submitit task. Python 3.11's PYTHONSAFEPATH (`python -P`) leaves it off; dropcli itself is then found where
it is installed, and where it is not on the path by installation (a source checkout run as `python -m`), its
own folder is named explicitly on PYTHONPATH.

submitit hands work to its tasks as pickles, and results back the same way: unpickling runs code, so the
folder they live in (SWEEP_DIR/.submitit) is made private (0700) and refused when someone else owns it or
could write into it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class UnsafeFolder(OSError):
    """A folder dropcli would read pickles from is not private to this user."""


def isolated_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a helper process: PYTHONSAFEPATH set, and dropcli's folder on PYTHONPATH where
    this interpreter found dropcli only through the current folder."""
    env = dict(os.environ if base is None else base)
    env["PYTHONSAFEPATH"] = "1"
    installed = [entry for entry in sys.path[1:] if entry and os.path.isabs(entry)]  # sys.path[0]: the start folder
    if PACKAGE_PARENT not in installed:
        given = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
        env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *given])
    return env


def helper_command(module: str) -> list[str]:
    """`python -P -m module` with the isolated environment (see isolated_environment)."""
    return [sys.executable, "-P", "-m", module]


@contextlib.contextmanager
def isolated_children() -> Iterator[None]:
    """os.environ made isolated while a library (submitit) starts processes with a copy of it; put back after."""
    saved = dict(os.environ)
    os.environ.update(isolated_environment())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def private_folder(path: Path) -> Path:
    """`path` as a folder only this user can write into (created 0700), or UnsafeFolder: owned by another user,
    a link, or writable by the group or the world (then anyone could swap a pickle in it)."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    check_private(path)
    return path


def check_private(path: Path) -> None:
    info = os.lstat(path)
    why = ("is a link" if stat.S_ISLNK(info.st_mode) else "is not a folder" if not stat.S_ISDIR(info.st_mode)
           else f"belongs to another user (uid {info.st_uid})" if info.st_uid != os.getuid()
           else "can be written by others" if info.st_mode & 0o022 else None)
    if why:
        raise UnsafeFolder(f"{path} {why}: submitit's pickles there could be swapped, and loading one runs code; "
                           f"remove it (or chmod go-w it, if it is yours) and submit again")
