"""Zero-cost proxies: scores of an untrained network from one minibatch (higher is better).

* ``naswot`` (Mellor et al. 2021): log-determinant of the kernel ``K[i, j]`` = number of
  activation units on which images i and j have the same binary code (unit active or not), summed
  over every activation module (ReLU, ReLU6, Hardswish) run by the forward pass.
* ``jacob_cov`` (Mellor et al. 2020, as in Abdelfattah et al. 2021): ``-sum(log(v + k) + 1 / (v + k))``
  over the eigenvalues ``v`` of the correlation matrix of the per-image input gradients of the
  summed logits, ``k = 1e-5``.
* ``snip`` (Lee et al. 2019): ``sum |w * dL/dw|`` over conv and linear weights, ``L`` the
  cross-entropy of the minibatch.
* ``grad_norm``: ``sum ||dL/dw||_2`` over the same weights (one norm per weight tensor).
* ``synflow`` (Tanaka et al. 2020): ``sum w * dR/dw`` with every weight replaced by its absolute value,
  ``R`` the summed output for an all-ones input of one image, in float64 with BN in inference
  mode at its initial statistics (the identity up to ``1/sqrt(1 + eps)``). The score is its natural
  log (same ranking, a readable range; 0 -> -inf).

The network is in training mode (batch statistics) and its BN running statistics stay untouched
(momentum 0), so every architecture sees the same initialization state. ``naswot``, ``jacob_cov``,
``snip`` and ``grad_norm`` share one forward pass (``snip`` and ``grad_norm`` one backward pass);
naswot alone runs without autograd. A non-finite value (e.g. a constant output) becomes ``-inf``.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import SgnasError

PROXIES: tuple[str, ...] = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm")
_SHARED = ("naswot", "jacob_cov", "snip", "grad_norm")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish)
Forward = Callable[[torch.Tensor], torch.Tensor]


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, each a known proxy (SgnasError naming the unknown one otherwise)."""
    out = tuple(names)
    for n in out:
        if n not in PROXIES:
            raise SgnasError(f"unknown zero-cost proxy {n!r}; known: {', '.join(PROXIES)}")
    if not out:
        raise SgnasError("no zero-cost proxy named")
    return out


def freeze_bn_stats(model: nn.Module) -> nn.Module:
    """Momentum 0 on every BN: training-mode forwards leave the running statistics as they are."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.0
    return model


def synflow_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` with every parameter replaced by its absolute value, in
    inference mode (the network synflow scores)."""
    syn = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in syn.parameters():
            p.abs_()
    return syn


def weights(model: nn.Module) -> list[torch.Tensor]:
    """Conv and linear weight tensors of ``model`` (what snip and grad_norm sum over)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _finite(v: float) -> float:
    return float(v) if math.isfinite(v) else -math.inf


def jacob_cov_score(jacobian: torch.Tensor) -> float:
    """``jacob_cov`` of per-image input gradients (``B`` rows)."""
    j = jacobian.reshape(jacobian.shape[0], -1).double().cpu().numpy()
    with np.errstate(all="ignore"):
        corr = np.corrcoef(j)
    if not np.all(np.isfinite(corr)):
        return -math.inf
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return _finite(-float(np.sum(np.log(np.abs(v) + k) + 1.0 / (np.abs(v) + k))))


class _CodeKernel:
    """Forward hooks accumulating NASWOT's binary-code kernel over activation modules."""

    def __init__(self, model: nn.Module):
        self.kernel: torch.Tensor | None = None
        self.on = False
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, _ACTIVATIONS)]

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if not self.on:
            return
        with torch.no_grad():
            o = output.detach()
            if o.dim() == 4 and o.is_contiguous(memory_format=torch.channels_last):
                o = o.permute(0, 2, 3, 1)  # a view: flattening needs no copy (unit order is free)
            c = (o.reshape(o.shape[0], -1) > 0).float()
            # same-code count: c c^T + (1 - c)(1 - c)^T = 2 c c^T - s 1^T - 1 s^T + n
            s = c.sum(1)
            k = 2.0 * (c @ c.t()) - s[:, None] - s[None, :] + c.shape[1]
            k = k.double()
            self.kernel = k if self.kernel is None else self.kernel + k

    def take(self) -> float:
        k, self.kernel = self.kernel, None
        if k is None:
            return -math.inf
        sign, logdet = torch.linalg.slogdet(k)
        return _finite(float(logdet)) if float(sign) > 0 else -math.inf


class ProxyRunner:
    """Computes proxies for one model that runs several architectures (a skeleton holding every
    op, run along one path) or for one network at a time.

    ``model`` holds the parameters (for snip / grad_norm and the code hooks); ``syn`` is its
    :func:`synflow_copy` (needed for ``synflow``). ``run(forward, syn_forward)`` takes the
    forward functions of one architecture through ``model`` and ``syn`` and returns
    ``{name: score}``.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                 names: Sequence[str], syn: nn.Module | None = None):
        self.names = check_names(names)
        self.model = freeze_bn_stats(model).train()
        self.x, self.y = x, y
        if any(n in ("snip", "grad_norm") for n in self.names) and y is None:
            raise SgnasError("snip and grad_norm need labels for the minibatch")
        self.syn = syn
        if "synflow" in self.names and syn is None:
            self.syn = synflow_copy(model)
        self.weights = weights(model)
        self.codes = _CodeKernel(model) if "naswot" in self.names else None
        self.ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)

    def close(self) -> None:
        if self.codes is not None:
            for h in self.codes.handles:
                h.remove()

    def run(self, forward: Forward, syn_forward: Forward | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        shared = [n for n in self.names if n in _SHARED]
        if shared:
            out.update(self._shared(forward, shared))
        if "synflow" in self.names:
            out["synflow"] = self._synflow(syn_forward)
        return {n: out[n] for n in self.names}

    def _shared(self, forward: Forward, names: list[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        grads_needed = any(n != "naswot" for n in names)
        if self.codes is not None:
            self.codes.on = True
        try:
            if not grads_needed:
                with torch.no_grad():
                    forward(self.x)
                return {"naswot": self.codes.take()}  # type: ignore[union-attr]
            x = self.x.detach().clone().requires_grad_("jacob_cov" in names)
            logits = forward(x)
        finally:
            if self.codes is not None:
                self.codes.on = False
        if "naswot" in names:
            out["naswot"] = self.codes.take()  # type: ignore[union-attr]
        want_w = "snip" in names or "grad_norm" in names
        if "jacob_cov" in names:
            (jac,) = torch.autograd.grad(logits.sum(), x, retain_graph=want_w)
            out["jacob_cov"] = jacob_cov_score(jac)
        if want_w:
            loss = nn.functional.cross_entropy(logits, self.y)
            grads = torch.autograd.grad(loss, self.weights, allow_unused=True)
            pairs = [(w.detach(), g) for w, g in zip(self.weights, grads) if g is not None]
            if "snip" in names:
                snip = torch.stack([(w * g).abs().sum() for w, g in pairs]).sum() if pairs else None
                out["snip"] = _finite(float(snip)) if snip is not None else -math.inf
            if "grad_norm" in names:
                gn = torch.stack([g.norm() for _, g in pairs]).sum() if pairs else None
                out["grad_norm"] = _finite(float(gn)) if gn is not None else -math.inf
        return out

    def _synflow(self, syn_forward: Forward | None) -> float:
        assert self.syn is not None and syn_forward is not None
        params = [p for p in self.syn.parameters()]
        r = syn_forward(self.ones).sum()
        grads = torch.autograd.grad(r, params, allow_unused=True)
        terms = [(p.detach() * g).sum() for p, g in zip(params, grads) if g is not None]
        total = float(torch.stack(terms).sum()) if terms else 0.0
        return math.log(total) if total > 0 and math.isfinite(total) else -math.inf


__all__ = ["PROXIES", "ProxyRunner", "check_names", "freeze_bn_stats", "jacob_cov_score",
           "synflow_copy", "weights"]
