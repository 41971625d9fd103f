"""NonFiniteGuard: a NaN/Inf masks updates on the device; the host learns of it at the next read."""

from __future__ import annotations

import pytest
import torch

from srlab.errors import SRLabError
from srlab.models.nonfinite import NonFiniteGuard, gradient_norm

NAN = torch.tensor(float("nan"))


def _step(guard: NonFiniteGuard, opt: torch.optim.Optimizer, param: torch.nn.Parameter, grad: float) -> None:
    param.grad = torch.full_like(param, grad)
    guard.check("generator gradient norm", gradient_norm([param]))
    guard.mask_step(opt)
    opt.step()
    NonFiniteGuard.release(opt)
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("fused", [True, False])  # False: the host-check fallback
def test_stop_masks_every_update_from_the_first_failure_and_names_it_later(fused):
    param = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([param], lr=0.1, fused=fused)
    guard, skipped = NonFiniteGuard("stop"), torch.zeros((), dtype=torch.long)
    guard.start_batch(param.device, batch=0, epoch=0)
    _step(guard, opt, param, 1.0)
    guard.raise_if_stopped()  # nothing failed yet
    after_first = (param.detach().clone(), {k: v.clone() for k, v in opt.state[param].items()})
    guard.start_batch(param.device, batch=1, epoch=0)
    parts = {"l_pix": NAN, "l_adv": torch.tensor(1.0)}
    guard.check("g_loss", NAN + 1, parts)
    _step(guard, opt, param, float("nan"))
    guard.start_batch(param.device, batch=2, epoch=1)  # finite, but the run has stopped
    _step(guard, opt, param, 1.0)
    guard.end_batch(skipped)
    assert torch.equal(param, after_first[0])
    assert all(torch.equal(v, after_first[1][k]) for k, v in opt.state[param].items())  # moments and step too
    assert "found_inf" not in opt.__dict__ and int(skipped) == 0
    with pytest.raises(SRLabError, match=r"^non-finite l_pix at batch 1 \(epoch 0\); the last checkpoint"):
        guard.raise_if_stopped()


def test_skip_masks_only_the_bad_batch_and_counts_it():
    param = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([param], lr=0.1, fused=True)
    guard, skipped = NonFiniteGuard("skip"), torch.zeros((), dtype=torch.long)
    values = []
    for batch, grad in enumerate([1.0, float("inf"), 1.0]):
        guard.start_batch(param.device, batch, 0)
        _step(guard, opt, param, grad)
        guard.end_batch(skipped)
        values.append(param.detach().clone())
    assert int(skipped) == 1 and torch.equal(values[0], values[1]) and not torch.equal(values[1], values[2])
    assert int(opt.state[param]["step"]) == 2
    guard.raise_if_stopped()  # skip never raises


def test_a_sum_that_overflows_with_finite_parts_names_the_sum():
    guard = NonFiniteGuard("stop")
    guard.start_batch(torch.device("cpu"), 7, 2)
    guard.check("g_loss", torch.tensor(float("inf")), {"l_pix": torch.tensor(1.0)})
    with pytest.raises(SRLabError, match=r"non-finite g_loss at batch 7 \(epoch 2\)"):
        guard.raise_if_stopped()
