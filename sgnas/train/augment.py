"""Batch-level augmentation applied on the training device (cutout)."""

from __future__ import annotations

import torch


def cutout(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per image (clipped at the border); the square's centre is
    drawn uniformly over the image from the global torch RNG."""
    n, _, h, w = x.shape
    top = (torch.randint(0, h, (n, 1, 1)) - size // 2).to(x.device)
    left = (torch.randint(0, w, (n, 1, 1)) - size // 2).to(x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x * (~inside).unsqueeze(1).to(x.dtype)
