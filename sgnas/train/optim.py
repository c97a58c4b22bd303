"""Optimizers of a :class:`~sgnas.train.recipes.TrainRecipe`."""

from __future__ import annotations

import math

import torch
from torch import nn

from .loop import param_groups
from .recipes import TrainRecipe


def make_optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.Optimizer:
    """SGD or RMSProp per ``recipe``.

    ``rmsprop_eps`` follows the TensorFlow convention (added inside the square root); torch adds its
    epsilon outside, so it gets ``sqrt(rmsprop_eps)``, which matches where the squared average is
    small.
    """
    groups = param_groups(model, recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.peak_lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov and recipe.momentum > 0)
    return torch.optim.RMSprop(groups, lr=recipe.peak_lr, alpha=recipe.rmsprop_alpha,
                               eps=math.sqrt(recipe.rmsprop_eps), momentum=recipe.momentum)
