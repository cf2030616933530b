"""Data augmentation: each training batch transformed on the device (the transforms are dropcli/augmentation.py),
the random numbers from a generator of the run's own (seeded by its seed), so a run is repeatable and a resume
exact. Stacked, each trial draws from its own generator as alone, and one transform is applied to all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from dropcli.datasets import augmentations, why_not
from dropcli.regularizers.base import REGULARIZERS, Config, Regularizer, Splits, Stackable
from dropcli.schema import Section

if TYPE_CHECKING:
    import torch

    from dropcli.augmentation import Draws

# The transforms (dropcli/augmentation.py); which of them apply to a dataset, and which it uses when none are
# named, its module declares (datasets.augmentations)
AugmentName = Literal["shift", "scale", "noise", "correlated_noise", "crop", "flip"]


class AugmentationSettings(Section):
    augmentation: Annotated[float, Field(ge=0.0, le=4.0)] = Field(0.0, json_schema_extra={"label": "augmentation"},
                                                                  description=(
        "strength of data augmentation of training batches (never validation or test data), on the device, from "
        "a generator seeded by the run's seed (repeatable, resumed exactly, stacked in sweeps): 0 off, 1 the "
        "standard magnitudes (see `augmentation_transforms`), scaled linearly in between and beyond"))
    augmentation_transforms: list[AugmentName] | None = Field(None, description=(
        "which transforms; null: the dataset's own. mnist1d (default all four, MNIST-1D's generator's transforms "
        "at its magnitudes): `shift` (circular, up to 27 of 40 positions), `scale` (amplitude × 1 ± 0.2), "
        "`noise` (+N(0, 0.02²)), `correlated_noise` (+0.25·N(0,1) smoothed by a Gaussian of σ = 2). Images: "
        "`crop` (zero-pad by ⅛ of the side, then a random window) and `flip` (left-right, probability ½); mnist "
        "takes `crop` only (a mirrored digit is not the same digit)"))


@REGULARIZERS.register("augmentation")
class Augmentation(Stackable, Regularizer):
    settings = AugmentationSettings
    search_space = {"regularizer.augmentation": ("float", 0.0, 2.0, False)}
    augments = True

    def __init__(self, strength: float, transforms: tuple[str, ...] | None):
        self.strength, self.requested = strength, transforms
        self.transforms: tuple[str, ...] = transforms or ()
        self.generator: torch.Generator | None = None

    @classmethod
    def check(cls, config: Any) -> None:
        allowed = augmentations(config.dataset.name)[0]
        wrong = [t for t in config.regularizer.augmentation_transforms or () if t not in allowed]
        if wrong:
            raise ValueError(f"regularizer.augmentation_transforms: {wrong[0]} does not apply to "
                             f"{config.dataset.name} ({why_not(config.dataset.name, wrong[0])}); allowed there: "
                             f"{', '.join(allowed) or 'none'}")

    @classmethod
    def from_config(cls, config: Any) -> Augmentation | None:
        if not config.augmentation:
            return None
        return cls(config.augmentation, tuple(config.augmentation_transforms) if config.augmentation_transforms
                   else None)

    def describe(self) -> str:
        return f"augmentation {self.strength:g}" + (f" ({', '.join(self.requested)})" if self.requested else "")

    def start(self, config: Config, splits: Splits, device: torch.device) -> None:
        import torch  # here, not at the top: keeps torch off the --help path

        from dropcli import augmentation

        self.transforms = self.requested or augmentations(config.dataset.name)[1]
        self.generator = torch.Generator(device=device).manual_seed(augmentation.seed_for(config.seed))

    def draw(self, x: torch.Tensor) -> Draws:
        from dropcli import augmentation  # here: keeps torch off the --help path

        assert self.generator is not None, "start() was not called"
        return augmentation.draw(self.transforms, x.shape[0], tuple(x.shape[1:]), self.strength, self.generator)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        from dropcli import augmentation  # here: keeps torch off the --help path

        return augmentation.apply(x, self.draw(x), self.strength)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state() if self.generator is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(state["generator"])

    @classmethod
    def stack(cls, trials: Sequence[Regularizer | None], device: torch.device) -> Regularizer | None:
        # the trials of a group share the strength and transforms (not per-trial keys): each is on, or none
        return StackedAugmentation([t for t in trials if isinstance(t, Augmentation)]) if any(trials) else None


class StackedAugmentation(Regularizer):
    """A stacked group's batch [T, B, ...]: each trial's slice with its own instance's draws, one transform."""

    augments = True

    def __init__(self, trials: list[Augmentation]):
        self.trials = trials

    def describe(self) -> str:
        return self.trials[0].describe()

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        import torch  # here, not at the top: keeps torch off the --help path

        from dropcli import augmentation

        draws = [trial.draw(part) for trial, part in zip(self.trials, x)]
        joined = {name: torch.cat([d[name] for d in draws]) for name in draws[0]}
        flat = augmentation.apply(x.reshape(-1, *x.shape[2:]), joined, self.trials[0].strength)
        return flat.view(x.shape)
