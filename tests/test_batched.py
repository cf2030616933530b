"""Batched sweeps: a stacked group must reproduce what each trial does alone."""

from __future__ import annotations

import json

import pytest
import torch

from dropcli import train as training
from dropcli.batched import group_key, train_group
from dropcli.cli import app
from dropcli.config import validate_config
from dropcli.models.build import family
from dropcli.models.mlp import StackedMLP
from dropcli.runs import RunFolder
from dropcli.sweep import SweepSpec


def lone_metrics(config, parent) -> list[dict[str, float]]:
    run = RunFolder.create(parent, config)
    training.run_experiment(training.prepare(config), run)
    return run.read_metrics()


def assert_close_rows(batched_rows, lone_rows, tolerance=1e-4):
    assert len(batched_rows) == len(lone_rows)
    for got, want in zip(batched_rows, lone_rows):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "gap_loss", "lr"):
            assert got[key] == pytest.approx(want[key], abs=tolerance), (key, got["epoch"])


def test_a_group_matches_each_trial_trained_alone(tiny_raw, tmp_path):
    variants = [
        {"seed": 0, "regularizer": {}},
        {"seed": 1, "regularizer": {"dropout": 0.5}},
        {"seed": 0, "regularizer": {"dropout": 0.2, "l2": 1e-2}},
        {"seed": 2, "regularizer": {"l1": 1e-3, "max_norm": 0.5}},
        {"seed": 1, "regularizer": {"dropout": 0.3, "early_stopping": {"patience": 1}}},
    ]
    raw = {**tiny_raw, "epochs": 4, "model": {"hidden_sizes": [32, 16]}}
    configs = [validate_config({**raw, **v}) for v in variants]
    assert len({group_key(c) for c in configs}) == 1
    runs = [RunFolder.create(tmp_path / "batched", c, folder_name=f"trial{i}") for i, c in enumerate(configs)]
    summaries = train_group(configs, runs)
    for config, run, summary in zip(configs, runs, summaries):
        assert summary["status"] == "completed" and summary["batched_with"] == 5
        assert_close_rows(run.read_metrics(), lone_metrics(config, tmp_path / "lone"))
    # the early-stopping trial stopped on its own, restored its best weights, and the others went on
    stopped = summaries[-1]
    assert stopped["stop_reason"].startswith("early_stopping") or stopped["epochs_run"] == 4
    assert [s["epochs_run"] for s in summaries[:-1]] == [4, 4, 4, 4]


def test_trials_of_one_seed_in_a_group_share_one_split_equal_to_their_own(tiny_raw):
    raw = {**tiny_raw, "epochs": 1, "model": {"hidden_sizes": [8]},
           "dataset": {**tiny_raw["dataset"], "label_noise": 0.2}}
    shared: dict = {}
    a, b, c = (training.prepare(validate_config({**raw, **v}), shared) for v in
               ({"seed": 0}, {"seed": 0, "regularizer": {"dropout": 0.5}}, {"seed": 1}))
    assert a.splits is b.splits and a.splits is not c.splits and len(shared) == 2
    alone = training.prepare(validate_config({**raw, "seed": 0, "regularizer": {"dropout": 0.5}}))
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(b.splits, name), getattr(alone.splits, name)), name
    for x, y in zip(b.model.parameters(), alone.model.parameters()):  # seeded as alone
        assert torch.equal(x, y)


def test_an_interrupted_group_leaves_lone_checkpoints_that_continue_where_it_stopped(tiny_raw, tmp_path, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch
    variants = [{"seed": 0, "regularizer": {"dropout": 0.5}},
                {"seed": 1, "regularizer": {"l2": 1e-2}, "optimizer": {"schedule": "cosine"}},
                {"seed": 2, "regularizer": {"dropout": 0.3, "early_stopping": {"patience": 1}}}]
    raw = {**tiny_raw, "epochs": 5, "model": {"hidden_sizes": [32, 16]}}
    configs = [validate_config({**raw, **v, "optimizer": {"schedule": "cosine"}}) for v in variants]
    folders = lambda name: [RunFolder.create(tmp_path / name, c, folder_name=f"t{i}") for i, c in enumerate(configs)]  # noqa: E731
    uninterrupted = folders("uninterrupted")
    train_group(configs, uninterrupted)

    def stop_after_epoch_3(row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt

    cut = folders("cut")
    with pytest.raises(KeyboardInterrupt):
        train_group(configs, cut, stop_after_epoch_3)
    for config, run, reference in zip(configs, cut, uninterrupted):
        state = torch.load(run.checkpoint_path, weights_only=True)
        assert state["epoch"] <= 3 and (state["epoch"] == 3 or state["stop_reason"])
        # each trial continues alone, from its share of the group: weights, Adam moments, generators
        summary = training.run_experiment(training.prepare(config), run, resume=True)
        assert summary["status"] == "completed" and summary["resumed"] == 1
        assert_close_rows(run.read_metrics(), reference.read_metrics())
        assert summary["test_acc"] == pytest.approx(reference.read_summary()["test_acc"], abs=1e-4)


@pytest.mark.parametrize("model", ["mlp", "gru"])
def test_a_trials_numbers_do_not_depend_on_the_group_it_trains_in(tiny_raw, tmp_path, model):
    """A sweep killed mid-group resumes its trials in other groups (those with a checkpoint, those without):
    they must end with the uninterrupted numbers, bit for bit. 10-class output biases stacked end to end put
    the last trial of a group of 2 (20 floats) in the scalar tail of Adam's vectorized update, and not in a
    group of 8 (80 floats): its numbers changed in the last bits; a trial left alone trained as a lone run.
    (The CNN's grouped convolution may still round differently with the number of groups.)"""
    raw = {**tiny_raw, "epochs": 4, "model": {**tiny_raw["model"], "name": model}}
    configs = [validate_config({**raw, "seed": seed, "regularizer": {"dropout": p}})
               for p in (0.0, 0.3) for seed in range(4)]

    def metrics(groups: list[list[int]], name: str) -> list:
        rows = {}
        for group in groups:
            runs = [RunFolder.create(tmp_path / name, configs[i], folder_name=f"t{i}") for i in group]
            train_group([configs[i] for i in group], runs)
            rows.update({i: [{k: v for k, v in row.items() if k != "seconds"} for row in run.read_metrics()]
                         for i, run in zip(group, runs)})
        return [rows[i] for i in range(len(configs))]

    together = metrics([list(range(8))], "together")
    assert metrics([[6, 7], list(range(6))], "apart") == together
    assert metrics([[0, 5, 7], [1, 2, 3, 4, 6]], "mixed") == together
    assert metrics([[3], [0, 1, 2, 4, 5, 6, 7]], "one apart") == together  # a stack of one, not a lone run


def test_the_stacked_gradient_is_each_lone_models_gradient():
    from dropcli.config import ModelConfig
    from dropcli.models.build import build_model

    torch.manual_seed(0)
    models = [build_model(ModelConfig(hidden_sizes=[8, 6]), (40,), 10) for _ in range(3)]
    stacked = StackedMLP(models)
    x, y = torch.randn(3, 5, 40), torch.randint(0, 10, (3, 5))
    masks = [(torch.rand(3, 5, 8) > 0.5) * 2.0, None]  # dropout p = 0.5 on the first hidden layer only
    torch.nn.functional.cross_entropy(stacked(x, masks), y, reduction="none").mean(1).sum().backward()
    for index, model in enumerate(models):
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        h = torch.relu(linears[0](x[index])) * masks[0][index]
        logits = linears[2](torch.relu(linears[1](h)))
        torch.nn.functional.cross_entropy(logits, y[index]).backward()
        for (parameter, _, to_lone), lone in zip(stacked.slots, model.parameters()):
            torch.testing.assert_close(to_lone(parameter.grad[index]), lone.grad)
            assert not parameter.grad[index, lone.numel():].any()  # a row's padding is never read


def test_a_stacked_model_holds_each_lone_model_exactly():
    from dropcli.config import ModelConfig
    from dropcli.models.build import build_model

    models = [build_model(ModelConfig(hidden_sizes=[8, 4]), (40,), 10) for _ in range(3)]
    stacked = StackedMLP(models)
    x = torch.randn(5, 40)
    out = stacked(x.expand(3, 5, 40))
    for index, model in enumerate(models):
        model.eval()
        torch.testing.assert_close(out[index].T, model(x))  # logits come class-major: [T, classes, B]
        copy = build_model(ModelConfig(hidden_sizes=[8, 4]), (40,), 10)
        stacked.copy_into(index, copy)
        for a, b in zip(copy.state_dict().values(), model.state_dict().values()):
            assert torch.equal(a, b)


def test_only_trials_that_differ_in_per_trial_numbers_share_a_group(tiny_raw):
    base = validate_config(tiny_raw)
    same = validate_config({**tiny_raw, "seed": 4, "regularizer": {"dropout": 0.4, "l2": 1e-3}})
    other_lr = validate_config({**tiny_raw, "optimizer": {"lr": 0.1}})
    cnn = validate_config({**tiny_raw, "model": {"name": "cnn"}})
    dropblock = validate_config({**tiny_raw, "model": {"name": "cnn"}, "regularizer": {"dropblock": {"p": 0.1}}})
    scaled = validate_config({**tiny_raw, "regularizer": {"dropout": 0.5, "dropout_style": "scale_at_test"}})
    assert group_key(base) == group_key(same) != group_key(other_lr)
    batchnorm = validate_config({**tiny_raw, "model": {"batchnorm": True}})
    assert group_key(cnn) is not None and group_key(cnn) != group_key(base)  # another model: another group
    assert group_key(dropblock) is None and group_key(scaled) is None and group_key(batchnorm) is None


def test_sweep_with_batch_writes_ordinary_run_folders(runner, tiny_raw, write_config, tmp_path):
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2",
                                 "--out", str(out), "--batch", "auto", "--quiet"])
    assert result.exit_code == 0, result.output
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 4
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["batched_with"] == 4
        assert {"config.yaml", "metrics.csv", "model.pt", "curves.png"} <= {p.name for p in folder.iterdir()}
    # a kill between a group's summaries and its pictures: the rerun draws what is missing, trains nothing
    (folders[0] / "curves.png").unlink()
    again = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--p", "0.5", "--seeds", "2",
                                "--out", str(out), "--batch", "auto", "--quiet"])
    assert "trained 0, already completed 4" in again.output
    assert (folders[0] / "curves.png").stat().st_size > 0 and not list(out.rglob(".*.partial"))


def test_trials_without_a_stacked_form_fall_back_and_say_so(runner, tiny_raw, write_config, tmp_path):
    raw = {**tiny_raw, "model": {**tiny_raw["model"], "batchnorm": True}}
    result = runner.invoke(app, ["sweep", str(write_config(raw)), "--p", "0.5", "--seeds", "1",
                                 "--out", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 0 and "batchnorm has no batched implementation" in result.output


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_bad_batch_values_exit_2(runner, tiny_raw, write_config, tmp_path, value):
    result = runner.invoke(app, ["sweep", str(write_config(tiny_raw)), "--batch", value,
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--batch" in result.output
    assert not (tmp_path / "runs").exists()


# --- the guard: every registered regularizer either stacks with the same result as alone, or is refused ------

# A config that switches each registered regularizer on. A regularizer registered without a sample here fails
# test_every_registered_regularizer_stacks_exactly_or_is_refused_a_group: write its sample, then see.
SAMPLES = {
    "dropout": [{"dropout": 0.4}, {"dropout": 0.3, "input_dropout": 0.2}, {"gaussian_dropout": 0.3},
                {"dropout": 0.3, "dropout_schedule": "linear_warmup"}, {"dropconnect": 0.3}],
    "l2": [{"l2": 1e-2}],
    "l1": [{"l1": 1e-3}],
    "max_norm": [{"max_norm": 0.5}],
    "early_stopping": [{"early_stopping": {"patience": 1}}],
    "augmentation": [{"augmentation": 1.0}, {"augmentation": 2.0, "dropout": 0.3,
                                             "augmentation_transforms": ["shift", "correlated_noise"]}],
    "concrete_dropout": [{"concrete_dropout": {}}],
    "label_smoothing": [{"label_smoothing": 0.1}, {"label_smoothing": 0.2, "dropout": 0.3, "l2": 0.001}],
}


def test_every_registered_regularizer_stacks_exactly_or_is_refused_a_group(tiny_raw, tmp_path):
    from dropcli.batched import unbatchable_reason
    from dropcli.regularizers import REGULARIZERS

    assert set(SAMPLES) == set(REGULARIZERS), "write a sample config for each registered regularizer"
    raw = {**tiny_raw, "epochs": 3, "model": {"hidden_sizes": [16, 8]}}
    for name, samples in SAMPLES.items():
        for index, sample in enumerate(samples):
            configs = [validate_config({**raw, "seed": seed, "regularizer": sample}) for seed in (0, 1)]
            if unbatchable_reason(configs[0]) is not None:
                assert group_key(configs[0]) is None  # trains alone: nothing of it can be skipped
                continue
            runs = [RunFolder.create(tmp_path / f"{name}{index}", c, folder_name=f"seed{i}")
                    for i, c in enumerate(configs)]
            train_group(configs, runs)
            for config, run in zip(configs, runs):
                assert_close_rows(run.read_metrics(), lone_metrics(config, tmp_path / f"lone-{name}{index}"))


def test_a_regularizer_registered_without_a_stacked_form_is_never_skipped_by_a_sweep(tiny_raw, tmp_path):
    """The silent wrong result this guard exists for: a new penalty, registered through the documented
    interface, was ignored by batched groups (the trial's metrics equalled those without it)."""
    from dropcli.regularizers import REGULARIZERS, Regularizer, weight_parameters
    from dropcli.sweep import SweepSpec, run_sweep

    class Orthogonality(Regularizer):  # a user's own penalty: pushes W Wᵀ towards the identity
        @classmethod
        def from_config(cls, config):
            return cls() if config.l1 == 0.0123 else None  # switched on by a marker value, for this test

        def describe(self):
            return "orthogonality"

        def penalty(self, model):
            return sum(((w @ w.T - torch.eye(len(w))) ** 2).sum() for w in weight_parameters(model)) * 0.1

    raw = {**tiny_raw, "epochs": 2}
    spec = lambda l1: SweepSpec(base={**validate_config(raw).to_dict(), "regularizer": {"l1": l1}},  # noqa: E731
                                seeds=[0, 1])
    REGULARIZERS.register("orthogonality")(Orthogonality)
    try:
        with_penalty = spec(0.0123).trials()
        assert group_key(with_penalty[0].config) is None  # refused a group: it trains alone, with its penalty
        run_sweep(with_penalty, tmp_path / "with", batch=16)
    finally:
        del REGULARIZERS["orthogonality"]
    run_sweep(spec(0.0123).trials(), tmp_path / "without", batch=16)  # the same numbers, penalty unregistered
    for trial in with_penalty:
        got = RunFolder(tmp_path / "with" / trial.name).read_metrics()
        plain = RunFolder(tmp_path / "without" / trial.name).read_metrics()
        assert got[-1]["train_loss"] != pytest.approx(plain[-1]["train_loss"], abs=1e-4)


def test_every_model_has_a_stacked_form():
    from dropcli.models import MODELS
    from dropcli.stacked import StackedModel

    for name, entry in MODELS.items():  # every model stacks (README: Speed); a model from code once probed
        assert entry.stacked and issubclass(family(name).STACKED, StackedModel), name


@pytest.mark.parametrize("model", ["mlp", "cnn", "gru"])
def test_a_group_killed_mid_run_resumes_stacked_to_identical_metrics(runner, tiny_raw, write_config, tmp_path,
                                                                      monkeypatch, fail_at_epoch, model):
    from dropcli import batched

    monkeypatch.setattr(training, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch
    raw = {**tiny_raw, "epochs": 6, "optimizer": {**tiny_raw["optimizer"], "schedule": "cosine"},
           "regularizer": {"early_stopping": {"patience": 3}}, "model": {**tiny_raw["model"], "name": model}}
    if model == "gru":
        raw["dataset"] = {**raw["dataset"], "train_size": 96}
    # half the trials stop at epoch 2, before the kill: they finish alone, and the rest resume as a smaller stack
    args = lambda out: ["sweep", str(write_config(raw)), "--out", str(tmp_path / out), "--quiet",  # noqa: E731
                        "--p", "0.3", "--l2", "0,0.01", "--seeds", "1",
                        "--grid", "regularizer.early_stopping={patience: 3},{patience: 1, min_delta: 0.5}"]
    assert runner.invoke(app, args("uninterrupted")).exit_code == 0

    disarm = fail_at_epoch(4, KeyboardInterrupt())
    assert runner.invoke(app, args("killed")).exit_code == 130
    disarm()
    stacked = []
    real_stepper = batched.StackedStepper

    def counting(members, states):
        stacked.append(len(members))
        return real_stepper(members, states)

    monkeypatch.setattr(batched, "StackedStepper", counting)
    result = runner.invoke(app, args("killed"))
    assert result.exit_code == 0 and "trained 8" in result.output, result.output
    assert stacked == [4]  # the four unfinished trials went on as one stack
    for trial in (tmp_path / "uninterrupted").iterdir():
        if not trial.is_dir() or trial.name == "report":
            continue
        resumed = tmp_path / "killed" / trial.name
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert strip(RunFolder(resumed).read_metrics()) == strip(RunFolder(trial).read_metrics())  # exactly
        summary = json.loads((resumed / "summary.json").read_text())
        written = json.loads((trial / "summary.json").read_text())
        assert summary["resumed"] == 1 and summary["test_acc"] == written["test_acc"]


@pytest.mark.parametrize("model", [{"name": "gru", "hidden_size": 8, "num_layers": 2, "rnn": "naive"},
                                   {"name": "gru", "hidden_size": 8, "num_layers": 2, "rnn": "variational"},
                                   {"name": "lstm", "hidden_size": 8, "num_layers": 2, "rnn": "variational"},
                                   {"name": "rnn", "hidden_size": 8, "num_layers": 1, "rnn": "naive"},
                                   {"name": "cnn", "channels": [4, 8], "hidden_size": 16, "spatial_dropout": False},
                                   {"name": "cnn", "channels": [4, 8], "hidden_size": 16, "spatial_dropout": True}])
def test_a_cnn_or_recurrent_group_matches_each_trial_trained_alone(tiny_raw, tmp_path, model):
    variants = [{"seed": 0, "regularizer": {}},
                {"seed": 1, "regularizer": {"dropout": 0.4}},
                {"seed": 0, "regularizer": {"dropout": 0.2, "l2": 1e-2, "max_norm": 0.8}},
                {"seed": 2, "regularizer": {"l1": 1e-3, "early_stopping": {"patience": 1}}}]
    rnn = {"rnn_dropout": model.pop("rnn")} if "rnn" in model else {}
    raw = {**tiny_raw, "epochs": 2, "model": model, "dataset": {**tiny_raw["dataset"], "train_size": 128}}
    configs = [validate_config({**raw, **v, "regularizer": {**v["regularizer"], **rnn}}) for v in variants]
    assert len({group_key(c) for c in configs}) == 1 and group_key(configs[0]) is not None
    runs = [RunFolder.create(tmp_path / "batched", c, folder_name=f"trial{i}") for i, c in enumerate(configs)]
    for config, run, summary in zip(configs, runs, train_group(configs, runs)):
        assert summary["batched_with"] == 4
        assert_close_rows(run.read_metrics(), lone_metrics(config, tmp_path / "lone"))


@pytest.mark.parametrize("input_shape", [(40,), (3, 8, 8)])
def test_stacked_models_compute_what_each_lone_model_computes(input_shape):
    from dropcli.config import ModelConfig
    from dropcli.models.build import build_model

    torch.manual_seed(0)
    for name in own_stacked_models():
        config = ModelConfig(name=name, hidden_sizes=[8, 6], channels=[4, 8], hidden_size=6, num_layers=2)
        models = [build_model(config, input_shape, 10).eval() for _ in range(3)]
        stacked = family(name).STACKED(models)
        x = torch.randn(3, 5, *input_shape)
        logits = stacked(x)  # [T, classes, B]
        for index, model in enumerate(models):
            torch.testing.assert_close(logits[index].T, model(x[index]), rtol=1e-5, atol=1e-5)
            if stacked.evaluates_by_trial:
                torch.testing.assert_close(stacked.trial_logits(index, x[index]), model(x[index]), rtol=1e-5, atol=1e-5)
            copy = build_model(config, input_shape, 10)
            stacked.copy_into(index, copy)
            for a, b in zip(copy.state_dict().values(), model.state_dict().values()):
                assert torch.equal(a, b), name


def test_stacked_evaluation_chunks_bound_memory_on_a_gpu():
    """4,096 rows of 64 trials through a CNN's 32 x 28 x 28 first block would be 26 GB of activations."""
    from dropcli.batched import evaluation_chunk

    assert evaluation_chunk(256, cuda=True) == training.EVAL_CHUNK  # the quickstart MLP: whole chunks
    rows = evaluation_chunk(32 * 28 * 28, cuda=True)
    assert 32 <= rows < training.EVAL_CHUNK and 64 * rows * 32 * 28 * 28 * 4 <= 2**30
    assert evaluation_chunk(256, cuda=False) == 128  # CPU: a layer of 16 trials within ~2 MB


@pytest.mark.parametrize("by_trial", [True, False])
def test_stacked_evaluation_gives_each_lone_models_loss_and_accuracy(by_trial, monkeypatch):
    """Evaluation trial by trial (the MLP on CPU) and in one stacked pass (the others; any model on a GPU)."""
    from dropcli import batched
    from dropcli.batched import evaluate_stacked
    from dropcli.config import ModelConfig
    from dropcli.models.build import build_model

    torch.manual_seed(0)
    for name in own_stacked_models():
        config = ModelConfig(name=name, hidden_sizes=[8, 6], channels=[4, 8], hidden_size=6)
        models = [build_model(config, (40,), 10).eval() for _ in range(3)]
        stacked = family(name).STACKED(models)
        monkeypatch.setattr(stacked, "evaluates_by_trial", by_trial and stacked.evaluates_by_trial)
        calls = []
        monkeypatch.setattr(stacked, "trial_logits", lambda *args, model=stacked, calls=calls: calls.append(1) or
                            type(model).trial_logits(model, *args))
        x, y = torch.randn(3, 70, 40), torch.randint(0, 10, (3, 70))
        # several chunks, a short last one, on either path
        monkeypatch.setattr(training, "EVAL_CHUNK", 32)
        monkeypatch.setattr(batched, "STACKED_EVAL_ELEMENTS", 1)
        loss, accuracy = evaluate_stacked(stacked, x, y)
        assert bool(calls) == stacked.evaluates_by_trial, name
        for index, model in enumerate(models):
            lone_loss, lone_accuracy = training.evaluate(model, x[index], y[index])
            torch.testing.assert_close(loss[index], lone_loss, rtol=1e-6, atol=1e-6)
            assert accuracy[index] == lone_accuracy, name


@pytest.mark.parametrize("input_shape", [(40,), (3, 8, 8)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_stacked_models_draw_each_lone_models_masks_in_training(input_shape, per_channel):
    """The group's masks for a step (one hash for every trial and site) are, trial by trial, the masks its
    lone model draws site after site from a stream keyed by the same seed, at the same position."""
    from dropcli.config import ModelConfig
    from dropcli.masks import MaskStream, attach, keep_value, lane_cutoff
    from dropcli.models.build import build_model
    from dropcli.regularizers.dropout_layers import DropoutOptions

    for name in own_stacked_models():
        config = ModelConfig(name=name, hidden_sizes=[8, 6], channels=[4, 8], hidden_size=6, num_layers=2,
                             spatial_dropout=per_channel)
        rates, seeds = [0.5, 0.0, 0.3], [100, 101, 102]
        models = [build_model(config, input_shape, 10, DropoutOptions(p=p)).train() for p in rates]
        stacked = family(name).STACKED(models)
        x = torch.randn(3, 5, *input_shape)
        group = MaskStream(seeds, torch.device("cpu"), position=1234)
        masks = group.masks(stacked.mask_shapes(x), torch.tensor([lane_cutoff(p) for p in rates], dtype=torch.int16),
                            torch.tensor([keep_value(p) for p in rates]))
        logits = stacked(x, masks)
        for index, model in enumerate(models):
            attach(model, MaskStream([seeds[index]], torch.device("cpu"), position=1234))
            torch.testing.assert_close(logits[index].T, model(x[index]), rtol=1e-5, atol=1e-5)
            if rates[index] > 0:  # the lone model drew exactly the group's words
                assert model.get_submodule(next(n for n, m in model.named_modules() if hasattr(m, "stream"))) \
                    .stream.position == group.position, name


def test_pictures_of_a_large_sweep_are_drawn_by_a_worker_process_and_all_exist(tiny_raw, tmp_path, monkeypatch):
    """From PICTURE_WORKER_FROM trials on, curves.png are drawn by a worker process while the next group trains;
    the sweep waits for them, so every completed trial has its picture when run_sweep returns."""
    import dropcli.sweep as sweeps

    started = []
    real = sweeps.PictureWorker.draw

    def draw(self, folders):
        started.append(self.parallel)
        real(self, folders)

    drawn_here = []
    monkeypatch.setattr(sweeps, "PICTURE_WORKER_FROM", 4)
    monkeypatch.setattr(sweeps.PictureWorker, "draw", draw)
    monkeypatch.setattr(sweeps, "draw_pictures", lambda folders: drawn_here.extend(folders))
    spec = SweepSpec(base=validate_config(tiny_raw).to_dict(), axes={"regularizer.dropout": [0.0, 0.5]},
                     seeds=[0, 1])
    trials = spec.trials()
    sweeps.open_sweep_dir(tmp_path / "sweep", spec, trials, "test")
    outcome = sweeps.run_sweep(trials, tmp_path / "sweep", batch=2)
    assert len(outcome.trained) == 4 and started == [True, True] and drawn_here == []  # all by the worker
    for trial in trials:
        assert (tmp_path / "sweep" / trial.name / "curves.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("model", ["mlp", "cnn", "gru"])
def test_a_trial_that_stops_leaves_the_stack_and_the_others_train_as_without_it(tiny_raw, tmp_path, monkeypatch,
                                                                               model):
    """Early stopping ends one trial at epoch 2; from epoch 3 the group trains the other two only (the stack
    is rebuilt from their lone states), and they end with the numbers of a group that never held it (bit for
    bit here; in general up to the float rounding of batched products, which may depend on the stack's size)."""
    from dropcli import batched

    raw = {**tiny_raw, "epochs": 5, "model": {**tiny_raw["model"], "name": model},
           "regularizer": {"dropout": 0.3, "early_stopping": {"patience": 50}}}
    if model == "gru":
        raw["dataset"] = {**raw["dataset"], "train_size": 96}
    stopper = {**raw, "seed": 1, "regularizer": {"dropout": 0.3, "early_stopping": {"patience": 1, "min_delta": 0.5}}}
    configs = [validate_config(c) for c in ({**raw, "seed": 0}, stopper, {**raw, "seed": 2})]
    assert len({group_key(c) for c in configs}) == 1
    sizes: list[int] = []
    real_build = batched.StackedStepper.build

    def build(self, stacked):
        sizes.append(len(stacked))
        real_build(self, stacked)

    monkeypatch.setattr(batched.StackedStepper, "build", build)
    runs = [RunFolder.create(tmp_path / "three", c, folder_name=f"seed{c.seed}") for c in configs]
    train_group(configs, runs)
    assert sizes == [3, 2]
    stopped = runs[1].read_summary()
    assert stopped["status"] == "completed" and stopped["epochs_run"] == 2
    assert stopped["stop_reason"].startswith("early_stopping")
    without = [RunFolder.create(tmp_path / "two", c, folder_name=f"seed{c.seed}") for c in (configs[0], configs[2])]
    train_group([configs[0], configs[2]], without)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    for shrunk, alone in zip((runs[0], runs[2]), without):
        assert len(shrunk.read_metrics()) == 5
        assert_close_rows(strip(shrunk.read_metrics()), strip(alone.read_metrics()), tolerance=1e-6)
        for key in ("test_loss", "test_acc", "train_loss"):
            assert shrunk.read_summary()[key] == pytest.approx(alone.read_summary()[key], abs=1e-6), key


@pytest.mark.parametrize("count, size, sizes", [(17, 16, [9, 8]), (33, 16, [11, 11, 11]), (32, 16, [16, 16]),
                                                (3, 2, [2, 1]), (1, 16, [1]), (3, 1, [1, 1, 1])])
def test_groups_are_as_few_and_as_even_as_can_be(count, size, sizes):
    """17 trials by 16 train as 9 + 8, both stacked, not as 16 and a lone one; order is kept."""
    from dropcli.batched import split_into_groups

    groups = split_into_groups(list(range(count)), lambda item: "same kind", size)
    assert [len(group) for group in groups] == sizes and sum(groups, []) == list(range(count))


def test_the_dry_run_says_why_each_lone_trial_is_alone(runner, tiny_raw, write_config, tmp_path):
    config = str(write_config(tiny_raw))
    result = runner.invoke(app, ["sweep", config, "--seeds", "3", "--batch", "2", "--dry-run",
                                 "--out", str(tmp_path / "s")])
    assert "alone: seed-2 (left over: the others of its kind fill groups of up to 2)" in result.output, result.output
    result = runner.invoke(app, ["sweep", config, "--grid", "optimizer.lr=0.001,0.01", "--seeds", "1", "--dry-run",
                                 "--out", str(tmp_path / "s")])
    assert result.output.count("(no other trial to train shares its model, data and optimizer)") == 2, result.output


def own_stacked_models() -> list[str]:
    """dropcli's own models with a stacked form (a model from code is probed instead: test_custom_models)."""
    from dropcli.models import MODELS

    return [name for name, entry in MODELS.items() if entry.stacked is True]
