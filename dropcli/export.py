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

import contextlib
import errno
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from dropcli import locks
from dropcli.export_runs import (
    ExportOutcome,
    describe,
    epoch_columns,
    epoch_times,
    exportable_runs,
    fingerprint,
    regular_file,
    shown_name,
    summary_numbers,
)
from dropcli.files import read_regular, write_atomically
from dropcli.results import flatten_config
from dropcli.run_reading import LoadedRun, reported_status
from dropcli.yamlsafe import brief

MARKER = "dropcli-export.json"  # in each TensorBoard run folder: which run folder, which fingerprint
SOURCE_TAG, FINGERPRINT_TAG, STATUS_TAG = "dropcli.source", "dropcli.fingerprint", "dropcli.status"
# per-epoch columns of metrics.csv → TensorBoard tags (train and validation side by side in one chart)
TENSORBOARD_TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_acc": "accuracy/train",
                    "val_acc": "accuracy/val", "gap_loss": "gap/loss", "gap_acc": "gap/accuracy", "lr": "lr"}
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "broken": "FAILED",
                 "pruned": "KILLED"}
INSTALL_HINT = "install dropcli's export extra: uv sync --extra export (or pip install 'dropcli[export]')"


class ExportError(Exception):
    """Export cannot start: a tracker is not installed, a URI or output folder is unusable (exit code 2)."""


def require(module: str, option: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ExportError(f"{option} needs the {module} package, which is not installed; {INSTALL_HINT}")


# ---------------------------------------------------------------------------------------------------------
# TensorBoard: OUT/<run>/events.out.tfevents.* (a sweep's trials keep their place: OUT/<sweep>/<trial>/)


def to_tensorboard(root: Path, out: Path) -> ExportOutcome:
    """One TensorBoard run per run folder: per-epoch loss, accuracy (train and val), gaps, lr (and learned
    dropout rates), the summary's results at the last epoch, and the config as hparams (the HParams tab
    compares runs by their settings).

    A transaction per run, under one lock on OUT (a second export into it waits): the new export is written
    beside its target and renamed into place, so a kill leaves the old export or the new one (and a leftover
    `.NAME.dropcli-*` folder that the next export removes), never a half that later exports would refuse."""
    require("tensorboard", "--tensorboard")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--tensorboard {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    outcome = ExportOutcome()
    with locks.acquire(out, wait=True):
        for name, run in exportable_runs(root, outcome):
            try:
                export_to_tensorboard(run, out / name, name, outcome)
            except OSError as error:
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                outcome.left_out[shown_name(name)] = f"{describe(error)}; not exported"
    return outcome


def export_to_tensorboard(run: LoadedRun, target: Path, name: str, outcome: ExportOutcome) -> None:
    staging, old = (target.with_name(f".{target.name}.dropcli-{what}") for what in ("new", "old"))
    for leftover in (staging, old):  # an export killed half-way: ours (the lock is held), removed
        remove(leftover)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        outcome.left_out[shown_name(name)] = f"{shown_name(str(target))} is a link or a file, not dropcli's export; " \
                                             f"not followed, not overwritten"
        return
    marker = read_marker(target)
    if target.exists() and any(target.iterdir()) and marker is None:
        outcome.left_out[shown_name(name)] = (f"{shown_name(str(target))} exists and was not written by dropcli "
                                              f"export; not overwritten")
        return
    source, stamp = str(run.path.resolve()), fingerprint(run)
    if marker is not None and marker.get("source") != source and Path(str(marker.get("source"))).exists():
        # another run folder's export that still exists (a folder moved or renamed since: ours to replace)
        outcome.left_out[shown_name(name)] = (f"{shown_name(str(target))} holds the export of "
                                              f"{brief(str(marker.get('source')))}; export each DIR into its own "
                                              f"--tensorboard folder")
        return
    if marker is not None and marker.get("fingerprint") == stamp:
        if marker.get("source") != source:  # the same files, moved here: the export stays, the marker follows
            write_atomically(target / MARKER, json.dumps({"source": source, "fingerprint": stamp}) + "\n")
        outcome.unchanged.append(shown_name(name))
        return
    staging.mkdir(parents=True)
    try:
        write_events(run, staging)
        write_atomically(staging / MARKER, json.dumps({"source": source, "fingerprint": stamp}) + "\n")
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except BaseException:
        remove(staging)
        raise
    remove(old)
    outcome.written.append(shown_name(name))


def remove(folder: Path) -> None:
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def read_marker(target: Path) -> dict[str, Any] | None:
    """The marker an export left, or None: missing, or not what dropcli writes (a planted one may be nested
    deep or hold huge numbers: only a flat object of two short strings is believed)."""
    try:
        data = json.loads(read_regular(target / MARKER, 1 << 12))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or set(data) != {"source", "fingerprint"} or not isinstance(data["source"], str) \
            or not isinstance(data["fingerprint"], str | None):
        return None
    return data


def write_events(run: LoadedRun, target: Path) -> None:
    from torch.utils.tensorboard.summary import hparams

    from dropcli.tensorboard_events import EventFile

    assert run.config is not None
    results = summary_numbers(run)
    events = EventFile()
    times = epoch_times(run)
    for row, walltime in zip(run.metrics, times):
        step = int(row["epoch"])
        for column in epoch_columns(run):
            tag = TENSORBOARD_TAGS.get(column, column.replace("learned_p", "learned_p/"))
            events.add_scalar(tag, row[column], step, walltime)
    settings = {key: value if isinstance(value, (int, float, str, bool)) else str(value)
                for key, value in {**flatten_config(run.config), "status": reported_status(run)}.items()}
    events.add_summaries(hparams(settings, results))
    last = int(run.metrics[-1]["epoch"])
    for key, value in results.items():
        events.add_scalar(key, value, last, times[-1])
    write_atomically(target / events.name, events.content)


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

    with store_lock(uri):  # one export at a time per store: no run exported twice, no table created twice
        try:
            client = MlflowClient(tracking_uri=uri)
            experiment_id = mlflow_experiment(client, uri, experiment)
            existing = exported_runs(client, experiment_id)
        except MlflowException as error:
            raise ExportError(f"--mlflow {uri}: {one_line(error.message)}") from None
        except Exception as error:  # e.g. sqlite:///FILE on a file that is no database: SQLAlchemy's own errors
            raise ExportError(f"--mlflow {uri}: {type(error).__name__}: {sql_reason(error)}") from None
        outcome = ExportOutcome()
        for name, run in exportable_runs(root, outcome):
            try:
                export_to_mlflow(client, experiment_id, existing, name, run, outcome)
            except OSError as error:  # an artifact's copy: a full disk stops the export, in one line
                if error.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                outcome.left_out[shown_name(name)] = f"{describe(error)}; not exported"
            except Exception as error:  # the store refused this run (or its disk is full: then every run)
                reason = sql_reason(error)
                if "full" in reason or "No space" in reason:
                    raise ExportError(f"--mlflow {uri}: the store's disk is full ({reason})") from None
                outcome.left_out[shown_name(name)] = f"MLflow refused it: {type(error).__name__}: {reason}"
    return outcome


def store_lock(uri: str) -> Any:
    """The lock every dropcli export into this store takes: a file beside a sqlite database (waited for). A
    tracking server orders its own writes; two exports into one server at once may still both add a run."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    database = Path(uri.removeprefix("sqlite:///")).absolute()
    return locks.acquire(database.parent, wait=True, name=f".{database.name}.dropcli-lock")


def sql_reason(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    return one_line(text).split(" [SQL:")[0]  # SQLAlchemy appends the statement it ran


def export_to_mlflow(client: Any, experiment_id: str, existing: dict[str, list[Any]], name: str, run: LoadedRun,
                     outcome: ExportOutcome) -> None:
    """Export one run, or find it exported: by its folder, or, for a folder moved since, by its fingerprint
    among the exports whose folder is gone (moved, not duplicated)."""
    source, stamp = shown_name(str(run.path.resolve())), fingerprint(run)
    previous = existing.get(source, [])
    if not previous:
        moved = [found for old, runs in existing.items() if not Path(old).exists() for found in runs
                 if found.data.tags.get(FINGERPRINT_TAG) == stamp][:1]
        for found in moved:
            client.set_tag(found.info.run_id, SOURCE_TAG, source)
            existing[found.data.tags[SOURCE_TAG]].remove(found)
            previous = moved
    current = [found for found in previous if found.data.tags.get(FINGERPRINT_TAG) == stamp][:1]
    if current:
        outcome.unchanged.append(shown_name(name))
    else:
        log_run(client, experiment_id, shown_name(name), run, source, stamp)
        outcome.written.append(shown_name(name))
    for found in previous:  # replaced (an older export, or one interrupted half-way) once the new one is whole
        if found not in current:
            client.delete_run(found.info.run_id)


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
    times = [int(t * 1000) for t in epoch_times(run)]
    start = times[0] - int(run.metrics[0].get("seconds", 0.0) * 1000)
    status = reported_status(run)
    # the fingerprint is tagged last: a run whose export was interrupted has none, and the next export redoes it
    note = shown_name(run.reason or str(run.summary.get("title", ""))[:5000])  # a summary.json anyone may write
    created = client.create_run(experiment_id, run_name=name, start_time=start,
                                tags={SOURCE_TAG: source, STATUS_TAG: status, "mlflow.note.content": note})
    run_id = created.info.run_id
    try:
        log_contents(client, run_id, run, times, status)
    except BaseException:  # half a run is no export: removed (a full disk may refuse even that)
        with contextlib.suppress(Exception):
            client.delete_run(run_id)
        raise
    client.set_tag(run_id, FINGERPRINT_TAG, stamp)


def log_contents(client: Any, run_id: str, run: LoadedRun, times: list[int], status: str) -> None:
    from mlflow.entities import Metric, Param

    assert run.config is not None
    params = [Param(key, shown_name(str(value)[:6000])) for key, value in flatten_config(run.config).items()]
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
