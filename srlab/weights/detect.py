"""Recognise a generator's architecture and hyperparameters from its state dict alone: the detection registry.

Pure functions, no file I/O: ``detect_architecture(obj)`` takes anything
``srlab.weights.extract_generator_state_dict`` understands (plain state dicts, BasicSR /
Real-ESRGAN ``params_ema`` files, the original ESRGAN and EDSR layouts, srlab checkpoints and
exports) and returns the net's name and a Hydra config that builds it, e.g.
``Architecture("SRVGGNetCompact", {"_target_": "srlab.nets.srvgg.SRVGGNetCompact", "num_feat": 64, ...})``.

Each architecture declares how it is recognised beside its class (``srlab.nets.<family>``, a
:class:`srlab.nets.spec.NetSpec`); :data:`SPECS` asks srlab's own in order, then spandrel's
registry (:mod:`srlab.weights.foreign`) for the families only spandrel knows.

What a state dict cannot tell, and what is assumed instead: RRDBNet's and SRResNet's
``bicubic_residual`` (off; srlab checkpoints and exports carry their config, so this only matters
for bare state dicts), EDSR's ``res_scale`` (0.1 for the 256-wide EDSR, 1 else, as BasicSR's
configs), SRVGGNetCompact's activation when no PReLU slopes are saved (``relu``; ``leakyrelu``
has no parameters either), input normalization (off) and, for families published in both, the
input range ([0, 1] or [0, 255]: the loader decides by a probe, :mod:`srlab.infer.stored`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from srlab.errors import SRLabError
from srlab.nets.autoencoder import AUTOENCODER_SPEC
from srlab.nets.bsrn import BSRN_SPEC
from srlab.nets.carn import CARN_M_SPEC
from srlab.nets.edsr import EDSR_SPEC
from srlab.nets.efdn import EFDN_SPEC
from srlab.nets.imdn import IMDN_SPEC
from srlab.nets.pan import PAN_SPEC
from srlab.nets.rfdn import RFDN_SPEC
from srlab.nets.rlfn import RLFN_SPEC
from srlab.nets.rrdbnet import RRDBNET_SPEC
from srlab.nets.safmn import SAFMN_SPEC
from srlab.nets.spec import NetSpec
from srlab.nets.span import SPAN_SPEC
from srlab.nets.srresnet import MSRRESNET_SPEC, SRRESNET_SPEC
from srlab.nets.srvgg import SRVGG_SPEC
from srlab.nets.swinir import SWINIR_SPEC
from srlab.nets.vanilla import VANILLA_SPEC
from srlab.weights import foreign
from srlab.weights.generator import extract_generator_state_dict

# Asked in order; each spec looks for keys only its layout has.
SPECS: tuple[NetSpec, ...] = (
    RRDBNET_SPEC, SWINIR_SPEC, EDSR_SPEC, SRVGG_SPEC, SRRESNET_SPEC, MSRRESNET_SPEC, VANILLA_SPEC, AUTOENCODER_SPEC,
    # the efficient-SR families of the NTIRE challenge zoos
    IMDN_SPEC, RFDN_SPEC, RLFN_SPEC, EFDN_SPEC, BSRN_SPEC, CARN_M_SPEC, PAN_SPEC, SPAN_SPEC, SAFMN_SPEC,
)  # fmt: skip


class Architecture(NamedTuple):
    """A recognised generator: its family name, the Hydra config (with ``_target_``) that builds it, and
    the input range its files take (1, 255, or None: decide by a probe)."""

    name: str
    net_config: dict[str, Any]
    input_range: float | None = 1.0


def known() -> str:
    """The layouts srlab recognises, for messages."""
    own = ", ".join(spec.name for spec in SPECS)
    return f"{own}; through spandrel: {foreign.known()}"


def detect_architecture(obj: Any) -> Architecture:
    """The generator architecture and hyperparameters of a state dict or any weights object.

    Args:
        obj: a generator state dict, or a loaded weights object (see
            ``srlab.weights.extract_generator_state_dict``).

    Returns:
        the family name and a config whose ``hydra.utils.instantiate`` builds a net that loads
        ``obj`` strictly.

    Raises:
        SRLabError: one line naming the first keys seen and the architectures known.
    """
    sd = extract_generator_state_dict(obj)
    for spec in SPECS:
        try:
            cfg = spec.detect(sd)
        except (KeyError, IndexError, ValueError, ZeroDivisionError):
            cfg = None  # the layout's anchor keys are there but the rest is not: not this net
        if cfg is not None:
            return Architecture(spec.name, cfg, spec.input_range)
    found = foreign.detect(sd)
    if found is not None:
        return Architecture(*found)
    first = ", ".join(list(sd)[:4])
    raise SRLabError(f"unknown generator layout (first keys: {first}); srlab recognises {known()}")
