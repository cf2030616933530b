"""The documentation is tested like code: the site builds with --strict, the config reference names every key
a config has, every `dropcli` command shown in a ```bash or ```console block runs (at a tiny budget), and
every figure a page shows is made by docs/make_figures.py."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from dropcli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

# Commands the docs show that cannot run here, each with the reason (matched against the command line).
NOT_RUN = {
    r"fashion_mnist|configs/(fashion_mnist|cifar)": "downloads a dataset",
    r"\bRUNS/": "a claims reproduction (docs/claims.md): hours of training, not a tiny run",
    r"--mlflow ": "creating an MLflow store takes ~12 s; tests/test_export.py exports into one and reads it back",
    r"--watch": "runs until Ctrl-C; tests/test_watching.py drives the watch loop for a fixed number of looks",
    r"custom_model\.yaml": "a model from code refuses the tiny budget's model.hidden_sizes (its sizes are its "
                           "init_args); tests/test_custom_models.py trains this example",
    r"benchmarks/regularizers-small": "the shipped benchmark: 296 runs, ~8 min of CPU; tests/test_benchmark.py "
                                      "runs a tiny suite end to end",
}
# A Slurm submission runs here with the local executor (the same trials, in this process; tests/test_slurm.py
# submits to a real one-node cluster), so that the page's status and report commands have a sweep to read.
INSTEAD = {"--executor slurm": ["--executor", "local"]}

# The tiny budget: appended after the command's own words, so that these values win (click keeps the last).
TINY_SET = ["--set", "epochs=2", "--set", "dataset.train_size=200", "--set", "model.hidden_sizes=[32]"]
TINY_OPTIONS = {"--seeds": "1", "--trials": "2", "--threads": "1"}  # lowered where the command uses them
TINY_OPTIONS_OF = {"tune": {"--seeds": "2"}}  # the comparison of tuned bests needs 2 seeds
TAKES_SET = {"train", "sweep", "tune", "config"}
READERS = {"report", "status", "export"}


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dropcli_commands(page: Path) -> list[str]:
    """Every `dropcli ...` / `uv run dropcli ...` line of the page's ```bash and ```console blocks, in order,
    with backslash continuations joined."""
    commands = []
    for block in re.findall(r"^```(?:bash|console)\n(.*?)^```", page.read_text(), flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ").removeprefix("uv run ")
            if line.startswith("dropcli "):
                commands.append(line)
    return commands


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.MULTILINE | re.DOTALL)


def reason_not_run(command: str) -> str | None:
    missing = [word for word in command.split() if word.startswith("examples/") and not (ROOT / word).exists()]
    if missing:  # the example lands with the custom data and model work (#31)
        return f"{missing[0]} is not in this checkout"
    return next((reason for pattern, reason in NOT_RUN.items() if re.search(pattern, command)), None)


def tiny_words(command: str, folder: Path, data_root: Path) -> list[str]:
    """The command's words with placeholders resolved (`<fingerprint>`: the newest match) and the tiny budget
    appended."""
    words = shlex.split(os.path.expandvars(command.replace("$PWD", str(folder))), comments=True)[1:]
    for i, word in enumerate(words):
        if "<" in word and ">" in word:
            matches = sorted(glob.glob(re.sub(r"<[^>]+>", "*", word), root_dir=folder),
                             key=lambda match: (folder / match).stat().st_mtime)
            assert matches, f"{command}: nothing matches {word}"
            words[i] = matches[-1]
    if words[0] in TAKES_SET and "--resume" not in words:
        # a dataset from files (examples/) has no root: its data are beside its config
        words += [*TINY_SET, *(["--set", f"dataset.root={data_root}"] if "examples/" not in command else [])]
        tiny = {**TINY_OPTIONS, **TINY_OPTIONS_OF.get(words[0], {})}
        words += [word for option, value in tiny.items() if option in words for word in (option, value)]
    for option, instead in INSTEAD.items():
        if option in command and "--dry-run" not in words:
            words += instead
    return words


@pytest.mark.parametrize("page", [page for page in PAGES if dropcli_commands(page) or python_blocks(page)],
                         ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_command_in_the_docs_runs_at_a_tiny_budget(page, runner, data_root, tmp_path, monkeypatch):
    """The page's commands in order, in one folder of their own (as a reader would run them), in this process."""
    for name in ("configs", "examples"):
        if (ROOT / name).exists():
            (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    commands = dropcli_commands(page)
    if not commands or commands[0].split()[1] in READERS:  # a page about reading runs: one run to read
        commands.insert(0, "dropcli train configs/quickstart.yaml")
    not_run = []
    for command in commands:
        reason = reason_not_run(command)
        if reason:
            not_run.append(f"{command} ({reason})")
            continue
        result = runner.invoke(app, tiny_words(command, tmp_path, data_root))
        assert result.exit_code == 0, f"{command}\n{result.output}"
    for code in python_blocks(page):  # the notebook examples, on the runs the commands made
        monkeypatch.setenv("MPLBACKEND", "Agg")
        exec(compile(code, f"{page.name} python block", "exec"), {})
    print("not run:", *not_run, sep="\n  ")


def test_the_command_parser_reads_blocks_and_continuations(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nuv run dropcli sweep a.yaml \\\n    --p 0.1  # why\nls\n```\n"
                    "```text\ndropcli train shown-not-run.yaml\n```\n```console\n$ dropcli status runs/x\n```\n")
    assert dropcli_commands(page) == ["dropcli sweep a.yaml      --p 0.1  # why", "dropcli status runs/x"]
    assert reason_not_run("dropcli train configs/fashion_mnist.yaml") is not None
    assert reason_not_run("dropcli train examples/absent/config.yaml") is not None
    assert tiny_words("dropcli sweep --executor slurm --seeds 5", tmp_path, tmp_path)[-2:] == ["--executor", "local"]
    assert "local" not in tiny_words("dropcli sweep --executor slurm --dry-run", tmp_path, tmp_path)


def test_the_config_reference_names_every_key_a_config_has(runner):
    hooks = load_module(DOCS / "hooks.py")
    result = runner.invoke(app, ["config", str(ROOT / "configs" / "quickstart.yaml")])
    assert result.exit_code == 0, result.output

    def dotted(node: dict, prefix: str = "") -> set[str]:
        keys = set()
        for key, value in node.items():
            keys.add(prefix + key)
            if isinstance(value, dict):
                keys |= dotted(value, f"{prefix}{key}.")
        return keys

    printed = dotted(yaml.safe_load(result.output))
    named = hooks.config_keys(hooks.config_reference())
    assert printed - named == set()
    assert "regularizer.early_stopping.patience" in named  # the keys of sections that are null by default too


def test_every_config_key_has_a_description():
    """A key's meaning lives in one place, its Field(description=...): the reference shows nothing else."""
    hooks = load_module(DOCS / "hooks.py")
    undescribed = re.findall(r"^\| `([^`]+)` \|.*\| — \|$", hooks.config_reference(), flags=re.MULTILINE)
    assert undescribed == []


def test_the_cli_reference_covers_every_command_and_option():
    import typer

    hooks = load_module(DOCS / "hooks.py")
    text = hooks.cli_reference()
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"## `dropcli {name}`" in text
        for param in command.params:
            if param.param_type_name == "option" and not getattr(param, "hidden", False):
                assert any(option in text for option in param.opts), (name, param.opts)
    assert "<name>" not in text  # help text is escaped: `runs/<name>-...` must show, not vanish as a tag


def test_every_figure_in_the_docs_is_made_by_make_figures():
    figures = load_module(DOCS / "make_figures.py").FIGURES
    shown = set()
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", page.read_text()):
            path = (page.parent / target).resolve()
            assert path.is_file(), f"{page.name}: {target} does not exist"
            shown.add(path.relative_to(DOCS).as_posix())
    assert shown - set(figures) == set()


def test_make_figures_makes_the_quickstart_figure_at_a_tiny_budget(data_root, tmp_path, monkeypatch):
    make_figures = load_module(DOCS / "make_figures.py")
    monkeypatch.chdir(tmp_path)
    made = make_figures.main(["quickstart_curves.png", "--tiny", "--out", str(tmp_path / "docs"),
                              "--work", str(tmp_path / "work"), "--set", f"dataset.root={data_root}"])
    assert made == [tmp_path / "docs" / "quickstart_curves.png"]
    assert made[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_site_builds_with_strict_links(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev dependency group: uv sync --group dev")
    pytest.importorskip("material", reason="mkdocs-material is in the dev dependency group")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
