"""Run folders into the trackers people already browse: TensorBoard event files and MLflow runs.

    dropcli export runs/ --tensorboard tb/        # then: tensorboard --logdir tb/
    dropcli export runs/ --mlflow sqlite:///mlflow.db

Every run folder under DIR with a config and at least one epoch is exported (whatever its status: a failed
or interrupted run shows how far it got, and says its status); folders without them are listed as left
out. Exports are idempotent: each exported run carries a fingerprint of its folder's files, so exporting
again skips what is unchanged and replaces what changed (a run that trained on), never duplicating it.

The trackers are optional dependencies (the `export` extra): a missing one is one clear line, exit 2.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dropcli.files import read_regular, write_atomically
from dropcli.results import flatten_config, read_runs, run_name
from dropcli.run_reading import LoadedRun, is_number, reported_status
from dropcli.yamlsafe import brief

MARKER = "dropcli-export.json"  # in each TensorBoard run folder: which run folder, which fingerprint
SOURCE_TAG, FINGERPRINT_TAG, STATUS_TAG = "dropcli.source", "dropcli.fingerprint", "dropcli.status"
FINGERPRINTED = ("config.yaml", "metrics.csv", "summary.json", "curves.png")
# per-epoch columns of metrics.csv → TensorBoard tags (train and validation side by side in one chart)
TENSORBOARD_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_acc": "accuracy/train",
                    "val_acc": "accuracy/val", "gap_loss": "gap/loss", "gap_acc": "gap/accuracy", "lr": "lr"}
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "broken": "FAILED",
                 "pruned": "KILLED"}
INSTALL_HINT = "install dropcli's export extra: uv sync --extra export (or pip install 'dropcli[export]')"


class ExportError(Exception):
    """Export cannot start: a tracker is not installed, a URI or output folder is unusable (exit code 2)."""


@dataclass
class ExportOutcome:
    written: list[str] = field(default_factory=list)  # exported now (new, or replacing a changed export)
    unchanged: list[str] = field(default_factory=list)  # exported before with the same files: skipped
    left_out: dict[str, str] = field(default_factory=dict)  # run → why it cannot be exported


def require(module: str, option: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ExportError(f"{option} needs the {module} package, which is not installed; {INSTALL_HINT}")


def exportable_runs(root: Path, outcome: ExportOutcome) -> Iterator[tuple[str, LoadedRun]]:
    for run in read_runs(root):
        name = run_name(run, root)
        if run.config is None or not run.metrics:
            outcome.left_out[name] = run.reason or "no config or no epochs to export"
        else:
            yield name, run


def fingerprint(run: LoadedRun) -> str:
    """What an export was made from: the run folder's files, hashed (a changed file means export again)."""
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        path = run.path / name
        digest.update(path.read_bytes() if regular_file(path) else b"-")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def regular_file(path: Path) -> bool:
    """A plain file, not a link or a FIFO (a run folder may have been written by anyone: a link to a
    secret must not become an artifact, a FIFO must not hang the export)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def summary_numbers(run: LoadedRun) -> dict[str, float]:
    """The summary's numeric results (test_acc, gap_loss, best_epoch, ...), as `summary.<key>`."""
    return {f"summary.{key}": float(value) for key, value in run.summary.items()
            if is_number(value) and key not in ("seed", "resumed")}


def epoch_columns(run: LoadedRun) -> list[str]:
    return [c for c in run.metrics[0] if c not in ("epoch", "seconds")]


def epoch_times(run: LoadedRun) -> list[float]:
    """Each epoch's wall-clock end (seconds since 1970), from started_at and the epochs' durations, so that
    TensorBoard's and MLflow's time axes show when the run trained (not when it was exported)."""
    try:
        start = datetime.fromisoformat(str(run.summary.get("started_at"))).timestamp()
    except ValueError:
        start = run.path.joinpath("metrics.csv").stat().st_mtime - sum(r.get("seconds", 0.0) for r in run.metrics)
    times, clock = [], start
    for row in run.metrics:
        clock += row.get("seconds", 0.0) if math.isfinite(row.get("seconds", 0.0)) else 0.0
        times.append(clock)
    return times


# ---------------------------------------------------------------------------------------------------------
# TensorBoard: OUT/<run>/events.out.tfevents.* (a sweep's trials keep their place: OUT/<sweep>/<trial>/)


def to_tensorboard(root: Path, out: Path) -> ExportOutcome:
    """One TensorBoard run per run folder: per-epoch loss, accuracy (train and val), gaps, lr (and learned
    dropout rates), the summary's results at the last epoch, and the config as hparams (the HParams tab
    compares runs by their settings)."""
    require("tensorboard", "--tensorboard")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--tensorboard {out}: exists and is not a folder")
    outcome = ExportOutcome()
    for name, run in exportable_runs(root, outcome):
        target = out / name
        marker = read_marker(target)
        if target.exists() and any(target.iterdir()) and marker is None:
            outcome.left_out[name] = f"{target} exists and was not written by dropcli export; not overwritten"
            continue
        source, stamp = str(run.path.resolve()), fingerprint(run)
        if marker is not None and marker.get("source") != source and Path(str(marker.get("source"))).exists():
            # another run folder's export that still exists (a folder moved or renamed since: ours to replace)
            outcome.left_out[name] = (f"{target} holds the export of {brief(str(marker.get('source')))}; export "
                                      f"each DIR into its own --tensorboard folder")
            continue
        if marker == {"source": source, "fingerprint": stamp}:
            outcome.unchanged.append(name)
            continue
        if target.exists():  # ours, from files that have changed since (or half-written): replaced, not appended to
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # the marker first, without a fingerprint: an export interrupted now is ours to redo, never refused
        write_atomically(target / MARKER, json.dumps({"source": source, "fingerprint": None}) + "\n")
        write_events(run, target)
        write_atomically(target / MARKER, json.dumps({"source": source, "fingerprint": stamp}) + "\n")
        outcome.written.append(name)
    return outcome


def read_marker(target: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_regular(target / MARKER, 1 << 16))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_events(run: LoadedRun, target: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    assert run.config is not None
    results = summary_numbers(run)
    with SummaryWriter(str(target)) as writer:
        times = epoch_times(run)
        for row, walltime in zip(run.metrics, times):
            step = int(row["epoch"])
            for column in epoch_columns(run):
                tag = TENSORBOARD_TAGS.get(column, column.replace("learned_p", "learned_p/"))
                writer.add_scalar(tag, row[column], step, walltime=walltime)
        settings = {key: value if isinstance(value, (int, float, str, bool)) else str(value)
                    for key, value in {**flatten_config(run.config), "status": reported_status(run)}.items()}
        for summary in hparams(settings, results):
            writer.file_writer.add_summary(summary)
        last = int(run.metrics[-1]["epoch"])
        for key, value in results.items():
            writer.add_scalar(key, value, last, walltime=times[-1])


# ---------------------------------------------------------------------------------------------------------
# MLflow: one run per run folder in one experiment, found again by its source path (a tag)


def to_mlflow(root: Path, uri: str, experiment: str = "dropcli") -> ExportOutcome:
    """One MLflow run per run folder: the config as params, per-epoch metrics with the epoch as step, the
    summary's results as `summary.*` metrics, curves.png / config.yaml / summary.json as artifacts, and the
    run's status. A file store (`./mlruns`) is refused by MLflow 3 itself: use sqlite:///PATH or a server."""
    require("mlflow", "--mlflow")
    if not experiment.strip():
        raise ExportError("--mlflow-experiment: an experiment needs a name (default: dropcli)")
    scheme = uri.partition("://")[0] if "://" in uri else ""
    if scheme in ("", "file"):
        raise ExportError(f"--mlflow {uri}: MLflow 3 keeps file stores (./mlruns) for reading only; export into "
                          f"sqlite:///PATH/mlflow.db or a tracking server's http://HOST:PORT")
    # a server that is down: a clear error in seconds, not minutes of MLflow's default retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..." (set after mlflow's import)
        logging.getLogger(name).setLevel(logging.WARNING)

    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = mlflow_experiment(client, uri, experiment)
        existing = exported_runs(client, experiment_id)
    except MlflowException as error:
        raise ExportError(f"--mlflow {uri}: {one_line(error.message)}") from None
    except Exception as error:  # e.g. sqlite:///FILE on a file that is no database: SQLAlchemy's own errors
        reason = one_line(str(error)).split(" [SQL:")[0]  # SQLAlchemy appends the statement it ran
        raise ExportError(f"--mlflow {uri}: {type(error).__name__}: {reason}") from None
    outcome = ExportOutcome()
    for name, run in exportable_runs(root, outcome):
        source, stamp = str(run.path.resolve()), fingerprint(run)
        previous = existing.get(source, [])
        current = [found for found in previous if found.data.tags.get(FINGERPRINT_TAG) == stamp][:1]
        if current:
            outcome.unchanged.append(name)
        else:
            log_run(client, experiment_id, name, run, source, stamp)
            outcome.written.append(name)
        for found in previous:  # replaced (an older export, or one interrupted half-way) once the new one is whole
            if found not in current:
                client.delete_run(found.info.run_id)
    return outcome


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:400]


def mlflow_experiment(client: Any, uri: str, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise ExportError(f"--mlflow-experiment {name}: that experiment was deleted in {uri}; restore it "
                              f"(mlflow experiments restore) or export into another name")
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in whatever folder we run from
        location = (Path(uri.removeprefix("sqlite:///")).absolute().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


def exported_runs(client: Any, experiment_id: str) -> dict[str, list[Any]]:
    """The runs dropcli exported into this experiment before, by source run folder."""
    found: dict[str, list[Any]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{SOURCE_TAG}` != ''",
                                  max_results=1000, page_token=token)
        for existing in page:
            found.setdefault(existing.data.tags[SOURCE_TAG], []).append(existing)
        token = page.token
        if not token:
            return found


def log_run(client: Any, experiment_id: str, name: str, run: LoadedRun, source: str, stamp: str) -> None:
    from mlflow.entities import Metric, Param

    assert run.config is not None
    times = [int(t * 1000) for t in epoch_times(run)]
    start = times[0] - int(run.metrics[0].get("seconds", 0.0) * 1000)
    status = reported_status(run)
    # the fingerprint is tagged last: a run whose export was interrupted has none, and the next export redoes it
    created = client.create_run(experiment_id, run_name=name, start_time=start,
                                tags={SOURCE_TAG: source, STATUS_TAG: status,
                                      # the title: text from a summary.json anyone may have written
                                      "mlflow.note.content": run.reason or str(run.summary.get("title", ""))[:5000]})
    run_id = created.info.run_id
    params = [Param(key, str(value)[:6000]) for key, value in flatten_config(run.config).items()]
    metrics = [Metric(column, row[column], when, int(row["epoch"]))
               for row, when in zip(run.metrics, times) for column in epoch_columns(run)]
    last = int(run.metrics[-1]["epoch"])
    metrics += [Metric(key, value, times[-1], last) for key, value in summary_numbers(run).items()]
    for start_at in range(0, len(params), 100):  # MLflow's limits per batch: 100 params, 1000 metrics
        client.log_batch(run_id, params=params[start_at:start_at + 100])
    for start_at in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start_at:start_at + 1000])
    for artifact in ("curves.png", "config.yaml", "summary.json"):
        if regular_file(run.path / artifact):
            client.log_artifact(run_id, str(run.path / artifact))
    if status in MLFLOW_STATUS:
        client.set_terminated(run_id, MLFLOW_STATUS[status], end_time=times[-1])
    client.set_tag(run_id, FINGERPRINT_TAG, stamp)
