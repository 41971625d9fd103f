"""model.compile=true (or a mode name): generator, discriminator and perceptual net are compiled in place and train."""

from __future__ import annotations

import hydra
import pytest
import torch

from srlab.errors import ConfigError
from srlab.models.base import compile_mode
from srlab.train import build_model


@pytest.mark.slow
def test_compile_compiles_every_trained_net_and_a_step_runs(smoke_cfg):
    cfg = smoke_cfg("esrgan", extra=["model.compile=true", "trainer.limit_train_batches=1", "data.samples_per_epoch=2",
                                     "trainer.limit_val_batches=0"])
    model = build_model(cfg)
    names = list(model.state_dict())
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[],
                                      enable_progress_bar=False)
    before = model.generator.conv_first.weight.detach().clone()
    trainer.fit(model, datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"))
    nets = model.compiled_nets()
    assert [type(n).__name__ for n in nets] == ["RRDBNet", "VGGStyleDiscriminator", "VGGFeatureExtractor"]
    assert all(n._compiled_call_impl is not None for n in nets)
    assert model.generator_ema._compiled_call_impl is None  # validation's copy stays eager
    assert list(model.state_dict()) == names  # in place: checkpoints keep their parameter names
    assert not torch.equal(model.generator.conv_first.weight, before)  # the compiled step trained


@pytest.mark.parametrize(("value", "mode"), [(False, None), ("false", None), (True, "default"),
                                             ("reduce-overhead", "reduce-overhead")])
def test_compile_takes_true_false_or_a_mode_name(value, mode):
    assert compile_mode(value) == mode


def test_an_unknown_compile_mode_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"model.compile='fast': use false, true or a torch.compile mode "
                                          r"\(default, reduce-overhead, max-autotune"):
        compile_mode("fast")
