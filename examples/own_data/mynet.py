"""A model of your own for dropcli: any nn.Module class whose forward maps a batch to logits [batch, classes].

dropcli passes the constructor what the config's `model.init_args` say, plus `in_features`, `input_shape`
and `num_classes` where it has parameters of those names, and the dropout rate through the argument that
`model.dropout_arg` names (here `p`). Without `dropout_arg`, dropcli sets `p` of every nn.Dropout instead.
Copy this file next to your config and change the layers.
"""

from __future__ import annotations

from torch import nn


class MyNet(nn.Module):
    """Two hidden layers with dropout after each ReLU, a linear output."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128, p: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(p),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(p),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.layers(x)
