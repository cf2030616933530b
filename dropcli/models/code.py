"""Where a model's code comes from, found and fingerprinted without running it (no torch, no import of the
user's module): what a run folder records when it is created (`code.json`), and what a resume checks before
it imports anything.

A config with `model.class_path` imports code and runs it, as a Hydra config's `_target_` does: only your
own configs should. Reading run folders (report, status, export, load_runs) never imports a model's code;
`train --resume` and a resumed sweep import only the very file recorded when the run was created, and
refuse when its content changed since.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropcli.files import read_regular, write_atomically

if TYPE_CHECKING:
    from dropcli.models import ModelConfig

RECORD = "code.json"
MAX_RECORD_BYTES = 1 << 16


class CodeChanged(Exception):
    """A run's model code is not what the run was created with (the CLI: one line, exit code 2)."""


def split_class_path(class_path: str) -> tuple[str, str]:
    """`pkg.mod.Class` or `pkg.mod:Class` → ("pkg.mod", "Class")."""
    module, _, name = class_path.replace(":", ".").rpartition(".")
    return module, name


def locate(config: ModelConfig) -> Path | None:
    """The file of class_path's module as an import from `code_dir` (then the usual path) would find it,
    found without running any of it (parent packages' __init__ files are not run either); None if none is
    found (the import then says why)."""
    if config.class_path is None:
        return None
    names = split_class_path(config.class_path)[0].split(".")
    finder = importlib.machinery.PathFinder
    spec = (finder.find_spec(names[0], [config.code_dir]) if config.code_dir else None) or finder.find_spec(names[0])
    for depth in range(1, len(names)):  # a package's submodules are found in its folder, its __init__ not run
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = finder.find_spec(".".join(names[:depth + 1]), list(spec.submodule_search_locations))
    return Path(spec.origin).resolve() if spec is not None and spec.origin else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_record(config: ModelConfig) -> dict[str, Any] | None:
    """What a run folder records of its model's code: the class, its module's file and that file's sha256."""
    path = locate(config)
    if path is None:
        return None
    return {"class_path": config.class_path, "file": str(path), "sha256": sha256(path)}


def write_record(folder: Path, config: ModelConfig) -> None:
    record = code_record(config)
    if record is not None:
        write_atomically(folder / RECORD, json.dumps(record, indent=2) + "\n")


def check_recorded(folder: Path, config: ModelConfig) -> None:
    """Before a run folder's model is built again (a resume): CodeChanged unless the module class_path finds
    is the file recorded when the run was created, with the content it had then. Nothing is imported."""
    if config.class_path is None:
        return
    try:
        record = json.loads(read_regular(folder / RECORD, MAX_RECORD_BYTES))
        recorded_file, recorded_hash = Path(record["file"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise CodeChanged(f"{folder}: its model is code ({config.class_path}) but the run folder has no readable "
                          f"{RECORD} naming the file it was created with; refusing to import code for it") from None
    found = locate(config)
    if found is None or found != recorded_file.resolve():
        raise CodeChanged(f"{folder}: model.class_path {config.class_path} now finds "
                          f"{found or 'no file'}, not {recorded_file} that the run was created with; refusing to "
                          f"import it")
    if sha256(found) != recorded_hash:
        raise CodeChanged(f"{folder}: {found} changed since the run was created (its sha256 differs from "
                          f"{RECORD}'s); a run continues the code it started with: put the file back, or start a "
                          f"new run")
