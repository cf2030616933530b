"""Data augmentation: what each transform does, that only training batches see it, and that it is repeatable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from dropcli import augmentation
from dropcli import train as training
from dropcli.cli import app
from dropcli.config import ConfigError, validate_config
from dropcli.runs import RunFolder


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shift_is_a_circular_shift_within_two_thirds_of_the_signal():
    x = torch.arange(40.0).repeat(500, 1)
    drawn = augmentation.draw(("shift",), 500, (40,), 1.0, generator())
    shifted = augmentation.apply(x, drawn, 1.0)
    for row, k in zip(shifted, drawn["shift"].tolist()):
        assert torch.equal(row, torch.roll(x[0], k))
    assert drawn["shift"].abs().max() <= round(40 * 48 / 72) and len(set(drawn["shift"].tolist())) > 20


def test_scale_multiplies_each_example_by_one_factor_in_the_generators_range():
    x = torch.randn(1000, 40)
    drawn = augmentation.draw(("scale",), 1000, (40,), 1.0, generator())
    scaled = augmentation.apply(x, drawn, 1.0)
    assert torch.allclose(scaled, x * drawn["scale"].unsqueeze(1))
    assert 0.8 <= drawn["scale"].min() < 0.82 and 1.18 < drawn["scale"].max() <= 1.2  # 1 ± 0.4/2


def test_noise_has_the_generators_scale_times_the_strength():
    x = torch.zeros(2000, 40)
    for strength in (1.0, 2.0):
        noisy = augmentation.apply(x, augmentation.draw(("noise",), 2000, (40,), strength, generator()), strength)
        assert noisy.std().item() == pytest.approx(0.02 * strength, rel=0.02)


def test_correlated_noise_is_scipys_gaussian_filter_of_the_scaled_noise():
    white = torch.randn(8, 40, dtype=torch.float64)
    want = np.stack([gaussian_filter(row, 2) for row in white.numpy()])  # mnist1d's corr_noise_like
    assert np.allclose(augmentation.smooth(white).numpy(), want, atol=1e-12)
    x = torch.zeros(8, 40)
    drawn = augmentation.draw(("correlated_noise",), 8, (40,), 1.0, generator())
    got = augmentation.apply(x, drawn, 1.0)
    assert torch.allclose(got, augmentation.smooth(0.25 * drawn["correlated_noise"]))


def test_crop_cuts_each_image_from_its_zero_padded_self_and_flip_mirrors_about_half():
    x = torch.randn(200, 3, 8, 8)
    drawn = augmentation.draw(("crop",), 200, (3, 8, 8), 1.0, generator())
    cropped = augmentation.apply(x, drawn, 1.0)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # 8 / 8 = 1 pixel at strength 1
    for i in range(200):
        dy, dx = drawn["crop"][i].tolist()
        assert torch.equal(cropped[i], padded[i, :, dy:dy + 8, dx:dx + 8])
    flips = augmentation.draw(("flip",), 200, (3, 8, 8), 1.0, generator())
    flipped = augmentation.apply(x, flips, 1.0)
    mirrored = flips["flip"]
    assert torch.equal(flipped[mirrored], x[mirrored].flip(-1)) and torch.equal(flipped[~mirrored], x[~mirrored])
    assert 70 < int(mirrored.sum()) < 130


def test_augmentation_sees_training_batches_only(tiny_raw, tmp_path, monkeypatch):
    """Every batch it transforms is made of training rows, one per step; validation and test rows never."""
    seen = []
    original = augmentation.apply
    monkeypatch.setattr(augmentation, "apply", lambda x, drawn, strength: seen.append(x.clone()) or
                        original(x, drawn, strength))
    config = validate_config({**tiny_raw, "regularizer": {"augmentation": 1.0}})
    experiment = training.prepare(config)
    summary = training.run_experiment(experiment, RunFolder.create(tmp_path, config))
    splits = experiment.splits
    steps = -(-len(splits.y_train) // config.optimizer.batch_size)
    assert len(seen) == config.epochs * steps
    train_rows = {tuple(row.tolist()) for row in splits.x_train}
    assert all(tuple(row.tolist()) in train_rows for batch in seen for row in batch)
    held_out = {tuple(row.tolist()) for row in torch.cat([splits.x_val, splits.x_test])}
    assert not held_out & {tuple(row.tolist()) for batch in seen for row in batch}
    assert summary["title"].endswith("augmentation 1, seed 0")


def test_augmentation_is_repeatable_per_seed_and_changes_training(tiny_raw, tmp_path):
    def final(raw):
        config = validate_config(raw)
        run = RunFolder.create(tmp_path, config)
        training.run_experiment(training.prepare(config), run)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in run.read_metrics()]

    augmented = {**tiny_raw, "regularizer": {"augmentation": 1.0}}
    assert final(augmented) == final(augmented)
    assert final(augmented) != final({**augmented, "seed": 1})
    assert final(augmented) != final(tiny_raw)


@pytest.mark.parametrize("dataset, transforms, message", [
    ("mnist", ["flip"], "regularizer.augmentation_transforms: flip does not apply to mnist (a mirrored digit is "
                        "not the same digit); allowed there: crop"),
    ("mnist1d", ["crop"], "crop does not apply to mnist1d (it is for images); allowed there: shift, scale, noise, "
                          "correlated_noise"),
    ("cifar10", ["shift"], "shift does not apply to cifar10"),
])
def test_transforms_that_make_no_sense_on_the_dataset_are_refused(dataset, transforms, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config({"dataset": {"name": dataset},
                         "regularizer": {"augmentation": 1, "augmentation_transforms": transforms}})


@pytest.mark.parametrize("setting, field", [("regularizer.augmentation=5", "regularizer.augmentation"),
                                            ("regularizer.augmentation_transforms=[rotate]",
                                             "regularizer.augmentation_transforms.0")])
def test_bad_augmentation_values_exit_2_naming_the_field(runner, tiny_raw, write_config, tmp_path, setting, field):
    result = runner.invoke(app, ["train", str(write_config(tiny_raw)), "--set", setting,
                                 "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and field in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dataset, folder, transforms", [("mnist", "MNIST", ("crop",)),
                                                         ("fashion_mnist", "FashionMNIST", ("crop", "flip"))])
def test_image_datasets_train_with_their_own_transforms(tmp_path, dataset, folder, transforms):
    """On images written in torchvision's own format: the dataset's default transforms, in a real run."""
    from test_data import write_mnist_like

    write_mnist_like(tmp_path / "data", folder)
    config = validate_config({"epochs": 2, "device": "cpu", "model": {"name": "cnn", "channels": [4]},
                              "dataset": {"name": dataset, "root": str(tmp_path / "data"), "download": False},
                              "regularizer": {"augmentation": 1.0}, "optimizer": {"batch_size": 16}})
    experiment = training.prepare(config)
    augmenter = next(r for r in experiment.regularizers if r.augments)
    assert augmenter.transforms == transforms
    summary = training.run_experiment(experiment, RunFolder.create(tmp_path / "runs", config))
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
