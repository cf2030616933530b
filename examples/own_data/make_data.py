"""Writes leaves.csv and leaves.npz: a small made-up table (600 leaves of 3 species, 8 measurements each),
deterministic, so that the example needs no download. Run it to remake the files:

    python examples/own_data/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SPECIES = ("birch", "maple", "oak")
COLUMNS = ("length_mm", "width_mm", "petiole_mm", "lobes", "teeth_per_cm", "vein_pairs", "thickness_um",
           "gloss")


def make(n_per_species: int = 200, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = np.array([[62, 45, 18, 0.3, 5.5, 7, 180, 0.55],     # birch: small, toothed, few lobes
                      [95, 105, 60, 4.8, 0.8, 5, 210, 0.35],    # maple: wide, lobed, long petiole
                      [110, 70, 9, 6.5, 0.2, 6, 260, 0.45]])    # oak: long, many shallow lobes
    spread = np.array([12, 12, 8, 1.6, 1.8, 1.5, 35, 0.15])
    means = means.mean(axis=0) + 0.3 * (means - means.mean(axis=0))  # species overlap: no feature decides alone
    x, y = [], []
    for label, mean in enumerate(means):
        size = rng.normal(0, 1, (n_per_species, 1))  # a leaf's overall size moves its lengths together
        values = mean + spread * (0.8 * rng.normal(0, 1, (n_per_species, len(mean))) + 0.6 * size * [1, 1, 1, 0, 0,
                                                                                                        0, 0.5, 0])
        values[:, 3] = np.clip(np.round(values[:, 3]), 0, None)  # lobes and vein pairs are counts
        values[:, 5] = np.clip(np.round(values[:, 5]), 1, None)
        x.append(values)
        y += [label] * n_per_species
    order = rng.permutation(len(y))
    return np.concatenate(x)[order].round(2).astype(np.float32), np.array(y)[order]


def main() -> None:
    x, y = make()
    np.savez_compressed(HERE / "leaves.npz", x=x, y=y, classes=np.array(SPECIES))
    lines = [",".join([*COLUMNS, "species"])]
    lines += [",".join([*(f"{v:g}" for v in row), SPECIES[label]]) for row, label in zip(x, y, strict=True)]
    (HERE / "leaves.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
