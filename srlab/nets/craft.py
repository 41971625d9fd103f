"""CRAFT (Li et al., ICCV 2023) as spandrel builds it, padded only as far as its windows need.

spandrel 0.4.2's ``CRAFT.forward`` pads ``(h // window + 1) * window - h`` rows, a whole extra window when
``h`` is already a multiple of it, and mirrors with the edge pixel repeated; the attention then sees
different context than the published nets were run with (0.077 max difference on the NTIRE 2024 team34
file's reference). The NTIRE 2024 test script (``forward_team34``) reflect-pads to the next multiple only.
This subclass does that and keeps spandrel's constructor and state-dict names, so spandrel's detection
and ``model.hyperparameters`` rebuild it: ``CRAFT(**spandrel_model.hyperparameters)``.
"""

from __future__ import annotations

import torch
from spandrel.architectures.CRAFT import CRAFT as SpandrelCRAFT


def reflect_pad(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Pad ``x`` (B, C, H, W) at the bottom/right by mirroring without repeating the edge (``F.pad`` 'reflect').

    Unlike ``F.pad``, any pad works: past the far edge the mirror folds back again (period 2 * (n - 1)),
    so maps smaller than the pad still reach a whole window; a 1-px side repeats its one pixel.
    """
    for dim, pad in ((2, pad_h), (3, pad_w)):
        n = x.shape[dim]
        if pad == 0:
            continue
        if n == 1:
            index = torch.zeros(n + pad, dtype=torch.long, device=x.device)
        else:
            index = torch.arange(n + pad, device=x.device) % (2 * n - 2)
            index = torch.where(index < n, index, 2 * n - 2 - index)
        x = x.index_select(dim, index)
    return x


class CRAFT(SpandrelCRAFT):
    """spandrel's CRAFT whose forward reflect-pads to the next multiple of ``window_size`` and crops back.

    Takes spandrel's keyword arguments (``in_chans``, ``window_size``, ``embed_dim``, ``depths``,
    ``num_heads``, ``split_size_0``, ``split_size_1``, ``mlp_ratio``, ``qkv_bias``, ``qk_scale``,
    ``norm_layer``, ``upscale``, ``img_range``, ``resi_connection``) and exposes ``scale``. Its
    ``forward`` takes ``lq`` (B, C, h, w) of any size in the range the weights were trained on (the NTIRE
    2024 team34 file: [0, 1]) and returns ``sr`` (B, C, h*upscale, w*upscale).
    """

    @property
    def scale(self) -> int:
        """The upscaling factor, under the name srlab's other generators use."""
        return self.upscale

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        """The net on ``x`` (B, C, H, W) whose sides are multiples of the window: no padding, no crop."""
        mean = self.mean.to(x)  # a plain attribute in spandrel, not a buffer: follow the input's device/dtype
        x = (x - mean) * self.img_range
        feat = self.conv_first(x)  # (B, embed_dim, H, W)
        feat = self.conv_after_body(self.forward_features(feat)) + feat
        return self.upsample(feat) / self.img_range + mean  # (B, C, H*upscale, W*upscale)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """Upscale ``lq`` (B, C, h, w) to ``sr`` (B, C, h*upscale, w*upscale)."""
        h, w = lq.shape[-2:]
        pad_h, pad_w = -h % self.window_size, -w % self.window_size  # 0 when already a multiple
        sr = self.forward_body(reflect_pad(lq, pad_h, pad_w))
        return sr[..., : h * self.upscale, : w * self.upscale]
