"""regularizers/l1.py: the L1 penalty."""

from __future__ import annotations


def test_l1_shrinks_the_l1_norm_against_no_regularizer(tiny_raw, tmp_path, trained_weights, total_norm):
    plain, _ = trained_weights(tiny_raw, tmp_path)
    sparse, _ = trained_weights(tiny_raw, tmp_path, l1=0.01)
    assert total_norm(sparse, p=1) < 0.9 * total_norm(plain, p=1)
