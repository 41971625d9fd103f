"""A checkpoint written before the layout regroup still resumes, loads and exports.

``tests/fixtures/esrgan_tiny_b1fab99.ckpt`` was written by commit b1fab99 (the last one before
modules moved to srlab/runs/, srlab/weights/, ...), in an empty folder, with
``python -m srlab.train hydra.run.dir=run`` and the overrides in ``OLD`` (``vgg_weights`` was then
``model.perceptual_loss.vgg_weights``). Lightning keys callback states by class name and the model
by ``_target_: srlab.nets...``: both must keep matching.
"""

from __future__ import annotations

from pathlib import Path

import torch

from srlab.export import main as export_main
from srlab.infer import load_generator
from srlab.train import build, run
from srlab.weights import safe_torch_load
from tests.conftest import compose_config

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "esrgan_tiny_b1fab99.ckpt"
OLD = ["model=esrgan", "debug=smoke", "model.generator.num_feat=4", "model.generator.num_block=1",
       "model.generator.num_grow_ch=2", "model.discriminator.num_feat=2", "vgg_weights=random"]


def test_old_checkpoint_resumes_with_every_callback_state(tmp_path, recwarn):
    old = safe_torch_load(FIXTURE)
    cfg = compose_config(tmp_path / "run", [*OLD, "trainer.max_epochs=2", f"ckpt_path={FIXTURE}"])
    _, _, trainer = build(cfg)
    assert set(old["callbacks"]) <= {cb.state_key for cb in trainer.callbacks}  # RNGState, AtomicCheckpoint, ...
    run(cfg)
    assert not [w for w in recwarn if "callbacks used to create the checkpoint" in str(w.message)]
    new = safe_torch_load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert (old["epoch"], old["global_step"]) == (0, 4)  # one epoch of two GAN batches
    assert (new["epoch"], new["global_step"]) == (1, 8)  # the second epoch continued from it
    assert int(new["state_dict"]["batches_seen"]) == 4


def test_old_checkpoint_loads_for_inference_and_exports(tmp_path):
    old = safe_torch_load(FIXTURE)
    gen = load_generator(FIXTURE)
    assert type(gen.net).__name__ == "RRDBNet" and gen.scale == 4
    ema = {k.removeprefix("generator_ema."): v for k, v in old["state_dict"].items() if k.startswith("generator_ema.")}
    assert all(torch.equal(v, ema[k]) for k, v in gen.net.state_dict().items())
    assert export_main([str(FIXTURE), "-o", str(tmp_path / "export")]) == 0
    again = load_generator(tmp_path / "export" / "generator.safetensors")
    assert all(torch.equal(v, ema[k]) for k, v in again.net.state_dict().items())
