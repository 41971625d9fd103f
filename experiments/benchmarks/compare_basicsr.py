"""srlab vs BasicSR 1.4.2 / Real-ESRGAN 0.3.0 on this machine: ESRGAN train step and tiled inference, as ratios.

Not part of srlab (BasicSR is never a dependency of srlab). Run it from the repository root with
the interpreter of a separate virtualenv that has them:

    python -m venv basicsr-venv --system-site-packages      # reuses the installed torch
    basicsr-venv/bin/pip install wheel
    basicsr-venv/bin/pip install --no-build-isolation basicsr==1.4.2 realesrgan
    basicsr-venv/bin/python experiments/benchmarks/compare_basicsr.py [--quick] [--sections train,infer]

Train: srlab's ESRGAN module from ``conf/model/esrgan.yaml`` in ``Trainer.fit`` (what
``python -m srlab.train model=esrgan`` runs) vs ``ESRGANModel.optimize_parameters`` (BasicSR's
ESRGAN recipe: L1 1e-2, VGG19 conv5_4 L1 1.0, RaGAN 5e-3, Adam 1e-4 (0.9, 0.99), EMA 0.999) on
the same nets (srlab's RRDBNet and discriminator weights copied into BasicSR's model), batch 4,
LQ 32 -> HQ 128, VGG19 with random weights on both sides. Blocks of steps alternate.

Infer: ``srlab.infer.upscale_array`` (torch, and onnxruntime when srlab's deploy extra is
installed) vs ``RealESRGANer.enhance`` (``pre_pad=0`` as Real-ESRGAN's
CLI, same ``tile`` and ``tile_pad``) on the same RRDBNet x4 weights and image; outputs must agree
within 1/255 in fp32 (srlab torch runs in ``--precision``: under ``auto`` on a CPU with native bf16
that is bf16, whose rounding the difference column then holds, labelled so; ``--precision fp32``
checks the parity there); peak RSS growth of each call (VmHWM reset before it). Memory grows with the image
for Real-ESRGAN (it keeps float32 copies of the whole output), so it is also compared on a
4000x3000 image with a zero-cost nearest-neighbour stand-in for the net on both sides.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

# Real-ESRGAN/BasicSR import torchvision.transforms.functional_tensor, renamed in torchvision 0.17
import torchvision.transforms._functional_tensor as _functional_tensor  # noqa: E402

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from srlab.bench.harness import machine_lines  # noqa: E402
from srlab.bench.infer import NearestStandIn, rrdbnet_x4, test_image  # noqa: E402
from srlab.bench.train import compose_config, lightning_steps, quiet_lightning, synthetic_batches  # noqa: E402
from srlab.bench.utils import PeakMemory, gib, interleave, machine_info, median, spread, timed  # noqa: E402
from srlab.errors import SRLabError  # noqa: E402
from srlab.infer import SRGenerator, to_device, upscale_array  # noqa: E402
from srlab.train import build_model  # noqa: E402

CPU = torch.device("cpu")
PRECISION_TRAIN = {"auto": "auto", "fp32": "32-true", "bf16": "bf16-mixed"}  # --precision -> trainer.precision


def basicsr_esrgan(srlab_module) -> object:
    """BasicSR's ESRGANModel with srlab's generator, EMA and discriminator weights (VGG19 random)."""
    import basicsr.archs.vgg_arch as vgg_arch
    from basicsr.models.esrgan_model import ESRGANModel

    vgg_arch.vgg.vgg19 = lambda pretrained=False, **kw: torchvision.models.vgg19(weights=None)  # no download
    adam = {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]}
    opt = {
        "name": "bench", "model_type": "ESRGANModel", "scale": 4, "num_gpu": 0, "is_train": True, "dist": False,
        "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23,
                      "num_grow_ch": 32},
        "network_d": {"type": "VGGStyleDiscriminator", "num_in_ch": 3, "num_feat": 64},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999, "optim_g": dict(adam), "optim_d": dict(adam),
            "scheduler": {"type": "MultiStepLR", "milestones": [50000, 100000, 200000, 300000], "gamma": 0.5},
            "total_iter": 400000, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1e-2, "reduction": "mean"},
            "perceptual_opt": {"type": "PerceptualLoss", "layer_weights": {"conv5_4": 1}, "vgg_type": "vgg19",
                               "use_input_norm": True, "range_norm": False, "perceptual_weight": 1.0,
                               "style_weight": 0, "criterion": "l1"},
            "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                        "loss_weight": 5e-3},
            "net_d_iters": 1, "net_d_init_iters": 0,
        },
        "logger": {"print_freq": 100}, "val": None,
    }
    model = ESRGANModel(opt)
    # the same nets: srlab's modules (and weights), BasicSR's training step and losses
    model.net_g = copy.deepcopy(srlab_module.generator).train().requires_grad_(True)
    model.net_g_ema = copy.deepcopy(srlab_module.generator_ema).eval()
    model.net_d = copy.deepcopy(srlab_module.discriminator).train().requires_grad_(True)
    model.optimizer_g = torch.optim.Adam(model.net_g.parameters(), lr=1e-4, betas=(0.9, 0.99))
    model.optimizer_d = torch.optim.Adam(model.net_d.parameters(), lr=1e-4, betas=(0.9, 0.99))
    model.optimizers = [model.optimizer_g, model.optimizer_d]
    return model


def compare_train(quick: bool, precision: str) -> list[str]:
    """Blocks of steps of srlab (denormals flushed, as srlab.train does) and BasicSR without / with the flush."""
    quiet_lightning()
    cfg = compose_config("esrgan", CPU, [f"trainer.precision={PRECISION_TRAIN[precision]}"])
    L.seed_everything(0, verbose=False)
    module = build_model(cfg)
    bsr = basicsr_esrgan(module)
    n, rounds = (2, 1) if quick else (2, 4)
    batches = synthetic_batches(cfg, n + 1, CPU)
    kinds = ("srlab", "basicsr", "basicsr+flush")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    it = 0
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            torch.set_flush_denormal(kind != "basicsr")
            if kind == "srlab":
                times[kind] += lightning_steps(cfg, module, n, CPU, flops=False)[0]
                continue
            for i, b in enumerate(batches):
                it += 1
                secs = timed(lambda b=b, it=it: (bsr.feed_data(b), bsr.optimize_parameters(it)), CPU)
                if i:  # the first of each block is not timed (as for srlab)
                    times[kind].append(secs)
    torch.set_flush_denormal(True)
    s, b, bf = (median(times[k]) for k in kinds)
    return [
        f"ESRGAN train step, batch 4, LQ 32 -> HQ 128, same nets, VGG19 random; {len(times['srlab'])} timed "
        f"steps each, blocks alternating; srlab in {cfg.trainer.precision}, BasicSR in fp32 (its only mode).", "",
        "| implementation | s/step (min-max) | samples/s |", "|---|---:|---:|",
        f"| srlab `AdversarialModule` in `Trainer.fit` (denormals flushed, as `srlab.train`) | {s:.2f} "
        f"({spread(times['srlab'])}) | {4 / s:.3f} |",
        f"| BasicSR 1.4.2 `ESRGANModel.optimize_parameters` (as it runs) | {b:.2f} ({spread(times['basicsr'])}) | "
        f"{4 / b:.3f} |",
        f"| BasicSR 1.4.2, denormals flushed too | {bf:.2f} ({spread(times['basicsr+flush'])}) | {4 / bf:.3f} |",
        "", f"srlab speed-up: **{b / s:.2f}x** over BasicSR as it runs, **{bf / s:.2f}x** with the same denormal "
        "setting (target >= 1.2x).",
    ]


def realesrganer(gen: SRGenerator, tile: int, tile_pad: int):
    """RealESRGANer with BasicSR's own RRDBNet and ``gen.net``'s weights (through a temporary .pth, as its CLI loads them).

    BasicSR's net, not a copy of srlab's: srlab's inference levers that live in its modules (the
    banded upsampling head of RRDBNet) must not reach the baseline.
    """
    from basicsr.archs.rrdbnet_arch import RRDBNet as BasicSRRRDBNet
    from realesrgan import RealESRGANer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.pth"
        torch.save({"params_ema": gen.net.state_dict()}, path)
        net = BasicSRRRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
        return RealESRGANer(scale=4, model_path=str(path), model=net, tile=tile, tile_pad=tile_pad, pre_pad=0,
                            half=False, device=CPU)


def _quiet_enhance(upsampler, bgr: np.ndarray) -> np.ndarray:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per tile
        return upsampler.enhance(bgr, outscale=4)[0]


def _srlab_backends(gen: SRGenerator) -> dict[str, object]:
    """srlab's torch generator and, with the deploy extra, the same net on onnxruntime."""
    out: dict[str, object] = {"srlab torch": gen}
    try:
        from srlab.infer.onnx import onnx_generator, require

        require("compare onnxruntime")
        out["srlab onnxruntime"] = onnx_generator(gen)
    except SRLabError as exc:
        print(f"onnxruntime left out: {exc}")
    return out


def compare_infer(quick: bool, size: int, tile: int, tile_pad: int, precision: str) -> list[str]:
    gen = rrdbnet_x4(CPU, "fp32")
    upsampler = realesrganer(gen, tile, tile_pad)  # fp32 copies of the same weights
    srlab = _srlab_backends(gen)
    to_device(gen, CPU, precision)  # in place, as srlab.upscale loads a generator (the torch backend)
    img = test_image(size, size)
    bgr = np.ascontiguousarray(img[..., ::-1])
    out: dict[str, np.ndarray] = {}
    mem: dict[str, list[float]] = {**{k: [] for k in srlab}, "Real-ESRGAN": []}

    def run(kind: str) -> None:
        with PeakMemory(CPU) as pm:
            if kind in srlab:
                out[kind] = upscale_array(srlab[kind], img, tile, tile_pad)
            else:
                out[kind] = _quiet_enhance(upsampler, bgr)[..., ::-1]  # BGR -> RGB
        mem[kind].append(pm.growth)

    times = interleave({k: (lambda k=k: run(k)) for k in mem}, reps=1 if quick else 2, device=CPU, warmup=0)
    r, mp = median(times["Real-ESRGAN"]), (size * 4) ** 2 / 1e6
    lines = [
        f"Tiled inference, RRDBNet x4 (23 blocks) with the same weights, {size}x{size} input, tile {tile}, "
        f"tile_pad {tile_pad}, Real-ESRGAN pre_pad 0 (its CLI default). onnxruntime runs the graph of "
        "`srlab.export --onnx` through the same `upscale_array`, in fp32 like Real-ESRGAN (half=False, its CPU "
        f"mode); srlab torch in {gen.precision} ({gen.precision_why}).", "",
        "| implementation | s (min-max) | output MP/s | peak RSS growth GiB | vs Real-ESRGAN: speed-up | memory | "
        "largest difference /255 from Real-ESRGAN's fp32 output |", "|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    ran = {kind: getattr(srlab[kind], "precision", "fp32") for kind in srlab}  # onnxruntime: fp32
    for kind in srlab:
        s = median(times[kind])
        diff = int(np.abs(out[kind].astype(int) - out["Real-ESRGAN"].astype(int)).max())
        lines.append(f"| `upscale_array`, {kind} ({ran[kind]}) | {s:.1f} ({spread(times[kind])}) | {mp / s:.4f} | "
                     f"{gib(max(mem[kind])):.3f} | **{r / s:.2f}x** | {max(mem[kind]) / max(mem['Real-ESRGAN']):.2f} "
                     f"| {diff} |")  # fmt: skip
    lines += [
        f"| Real-ESRGAN `RealESRGANer.enhance` (fp32) | {r:.1f} ({spread(times['Real-ESRGAN'])}) | {mp / r:.4f} | "
        f"{gib(max(mem['Real-ESRGAN'])):.3f} | 1 | 1 | 0 |",
        "", "Targets: speed-up >= 1.5x with the fastest backend, memory ratio <= 0.5, difference <= 1/255 for the "
        "fp32 rows (like with like).",
    ]
    if any(p != "fp32" for p in ran.values()):
        lines.append(f"The {', '.join(f'{k} ({p})' for k, p in ran.items() if p != 'fp32')} row's difference is "
                     "that precision's rounding against fp32, not a parity check: `--precision fp32` checks parity.")
    return lines + _memory_big_image()


def _memory_big_image() -> list[str]:
    """Peak RSS growth on 1000x1000 and 4000x3000 with the nearest stand-in net (the image-size part of memory)."""
    gen = SRGenerator(NearestStandIn(), 4, {})
    from realesrgan import RealESRGANer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.pth"
        torch.save({"params": gen.net.state_dict()}, path)
        upsampler = RealESRGANer(scale=4, model_path=str(path), model=NearestStandIn(), tile=128, tile_pad=10,
                                 pre_pad=0, half=False, device=CPU)
    lines = ["", "Image-size part of the memory, tile 128, with a zero-cost nearest-neighbour stand-in for the net on "
             "both sides (the net's per-tile activations, measured above, come on top):", "",
             "| input | srlab peak RSS growth GiB | Real-ESRGAN | ratio | srlab s | Real-ESRGAN s |",
             "|---|---:|---:|---:|---:|---:|"]
    for h, w in ((1000, 1000), (3000, 4000)):
        img = test_image(h, w)
        bgr = np.ascontiguousarray(img[..., ::-1])
        fns = {"srlab": lambda: upscale_array(gen, img, 128, 10), "Real-ESRGAN": lambda: _quiet_enhance(upsampler, bgr)}
        got = {}
        for kind, fn in fns.items():
            with PeakMemory(CPU) as pm:
                secs = timed(fn, CPU)
            got[kind] = (pm.growth, secs)
        (sg, ss), (rg, rs) = got["srlab"], got["Real-ESRGAN"]
        lines.append(f"| {w}x{h} | {gib(sg):.3f} | {gib(rg):.3f} | {sg / rg:.2f} | {ss:.1f} | {rs:.1f} |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default="train,infer")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--size", type=int, default=256, help="infer: input side (default 256)")
    p.add_argument("--tile", type=int, default=128, help="infer: tile size (default 128)")
    p.add_argument("--tile-pad", type=int, default=10, help="infer: tile pad (default 10, Real-ESRGAN's)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="srlab's side (auto: bf16 where the CPU computes it natively, as srlab's own default)")
    args = p.parse_args()
    from importlib.metadata import version

    # both sides of the inference comparison; train sets it per block
    info = {**machine_info(CPU), "flush_denormal": torch.set_flush_denormal(True)}
    lines = ["# srlab vs BasicSR / Real-ESRGAN", "", f"Command: `{' '.join(sys.argv)}`", "",
             *machine_lines(info), f"- basicsr {version('basicsr')}, realesrgan {version('realesrgan')}"]
    print("\n".join(lines), flush=True)
    for section in args.sections.split(","):
        block = ["", f"## {section}", ""]
        if section == "train":
            block += compare_train(args.quick, args.precision)
        else:
            block += compare_infer(args.quick, args.size, args.tile, args.tile_pad, args.precision)
        print("\n".join(block), flush=True)
        lines += block
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"compare_basicsr-{info['host']}-{info['date'].replace(':', '-')}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
