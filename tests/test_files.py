"""files.py, the one way dropcli writes a file: never through a planted link, whole or not at all, and a full
disk names the file. A walk over the source checks that no other module writes a file any other way."""

from __future__ import annotations

import ast
import errno
from pathlib import Path

import pytest

from dropcli import files

SOURCE = Path(files.__file__).parent
# Calls that write to their first argument when it is a path (a buffer is fine: its bytes then go through files.py)
WRITING_CALLS = {"savez", "savez_compressed", "savefig", "save", "to_csv", "to_parquet", "to_json", "dump",
                 "write_text", "write_bytes", "copy", "copyfile", "copy2", "copytree", "move"}
IN_MEMORY = {"buffer", "encoded", "rendered", "handle", "stream"}  # names the modules give their in-memory buffers
# The writes that are not whole-file writes, each for its reason (all through O_NOFOLLOW, never a planted link)
ALLOWED = {
    ("locks.py", "os.open"): "the lock file: flock needs a file that stays; O_NOFOLLOW, regular files only",
    ("runs.py", "os.open"): "metrics.csv grows a row per epoch (O_APPEND | O_NOFOLLOW); rewrites go through files",
    ("tune.py", "os.open"): "cuts a torn last line off Optuna's journal, in place under Optuna's lock (O_NOFOLLOW)",
}


def writes_in(path: Path) -> list[tuple[str, int]]:
    """(what, line) for each call in `path` that may open or write a file by its path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        text = ast.unparse(node)
        if name == "open" and isinstance(func, ast.Attribute) and ast.unparse(func.value) == "os":
            if any(flag in text for flag in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND")):
                found.append(("os.open", node.lineno))
        elif name == "open" and isinstance(func, ast.Name):
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                 None)
            opened = ast.unparse(node.args[0]) if node.args else ""
            if opened == "descriptor" or opened.startswith("os.open("):  # counted at its os.open
                continue
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                found.append(("open", node.lineno))
        elif name in WRITING_CALLS and node.args and (name != "save" or isinstance(func, ast.Attribute)):
            target = ast.unparse(node.args[0])
            if name == "dump" and len(node.args) < 2:  # yaml.dump(data) / json.dumps: text, no file
                continue
            if name == "dump" or (name == "save" and ast.unparse(func.value) == "torch"):  # save(obj, file)
                target = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if target not in IN_MEMORY and not target.startswith(("io.", "buffer")):
                found.append((name, node.lineno))
    return found


def test_no_module_but_files_writes_a_file_by_its_path():
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "files.py":
            continue
        for what, line in writes_in(path):
            if (path.name, what) not in ALLOWED:
                offenders.append(f"{path.relative_to(SOURCE)}:{line}: {what}")
    assert offenders == [], "write these through dropcli.files (write_atomically / open_new):\n" + "\n".join(offenders)


def test_a_write_never_follows_a_planted_link_and_replaces_the_link_itself(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "out.txt"
    for planted in (target, tmp_path / f".{target.name}.partial"):
        planted.symlink_to(victim)
    files.write_atomically(target, "new")
    assert victim.read_text() == "precious" and not target.is_symlink() and target.read_text() == "new"


def test_a_full_disk_names_the_file_and_leaves_the_old_one_whole(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("old")

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError) as raised:
        files.write_atomically(target, "new")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
