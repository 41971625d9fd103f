"""Do srlab's Real-ESRGAN training LQ images have the distribution Real-ESRGAN 0.3.0's own recipe gives?

Run with the BasicSR virtualenv's interpreter (BasicSR 1.4.2 + Real-ESRGAN 0.3.0; srlab never imports
them, this script sees srlab through the repository root), from the repository root:

    nice -n 19 env OMP_NUM_THREADS=1 basicsr-venv/bin/python experiments/realesrgan/distribution_check.py \\
        --images ../shared/datasets/SunHays80 -n 800

Every sample is a random 400 px region of a random image (fixed by ``--seed``), fed in batches of 16 to:

- ``source``: Real-ESRGAN's recipe. ``RealESRGANDataset.__getitem__`` draws the three kernels for the
  region (its file reader handed the region itself, flips off), ``RealESRGANModel.feed_data`` degrades
  it on the CPU and cuts the 256 px patch at random (``gt_size: 256``); the pool is off;
- ``before``: srlab as before issue 31, ``build_degradation("realesrgan", 4)`` degrading a 256 px patch
  of the region whole (``crop_size`` 256 = what ``null`` gave);
- ``now``: srlab's default, ``crop_for(256)`` = 400 px, the region itself, degraded then cut at random.

On each 64 px LQ patch, against the plain bicubic 1/4 of its (unsharpened) GT patch, 8 measures:
PSNR, Immerkaer's noise estimate, Laplacian variance, high-frequency energy (grey minus its Gaussian
blur, sigma 1), JPEG blockiness (mean step across the patch's 8 px grid lines / mean step elsewhere)
and the mean colour shift of R, G and B (8-bit levels); over the whole patch and over its outer 8
pixels alone. Two-sample Kolmogorov-Smirnov (scipy) of ``before`` and ``now`` against ``source``.
Writes ``distribution_check.md`` and ``distribution_grid.png`` beside this file (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import torchvision.transforms._functional_tensor as _functional_tensor

sys.modules.setdefault("torchvision.transforms.functional_tensor", _functional_tensor)  # renamed in torchvision 0.17
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from basicsr.utils import DiffJPEG, USMSharp  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from realesrgan.data.realesrgan_dataset import RealESRGANDataset  # noqa: E402
from realesrgan.models.realesrgan_model import RealESRGANModel  # noqa: E402
from scipy.stats import ks_2samp  # noqa: E402

from srlab.data.degradations import build_degradation, preset  # noqa: E402
from srlab.data.images import list_images, read_image  # noqa: E402
from srlab.data.realesrgan.params import collate_draws  # noqa: E402

REGION, PATCH, SCALE, BATCH, BORDER = 400, 256, 4, 16, 8
KERNELS = ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
# options/train_realesrgan_x4plus.yml of Real-ESRGAN 0.3.0, typed from the source, not read from srlab
SOURCE_DATASET = {
    "blur_kernel_size": 21, "kernel_list": KERNELS, "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1, "blur_sigma": [0.2, 3], "betag_range": [0.5, 4], "betap_range": [1, 2],
    "blur_kernel_size2": 21, "kernel_list2": KERNELS, "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4], "betap_range2": [1, 2],
    "final_sinc_prob": 0.8, "use_hflip": False, "use_rot": False,  # flips off: the same regions on both sides
}
SOURCE_MODEL = {
    "scale": SCALE, "gt_size": PATCH, "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5],
    "gaussian_noise_prob": 0.5, "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4,
    "jpeg_range": [30, 95], "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3], "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25], "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95],
}
MEASURES = ("psnr_vs_bicubic", "noise_immerkaer", "laplacian_var", "hf_energy", "blockiness",
            "shift_r", "shift_g", "shift_b")
PIPELINES = ("source", "before", "now")


class _Regions:
    """Hands ``RealESRGANDataset`` the region of sample ``path`` as PNG bytes (its ``FileClient.get``)."""

    def __init__(self) -> None:
        self.regions: dict[str, np.ndarray] = {}

    def get(self, path: str, key: str) -> bytes:
        return cv2.imencode(".png", self.regions[path][..., ::-1])[1].tobytes()  # the source reads BGR


class _JPEG(DiffJPEG):
    """BasicSR's DiffJPEG with a contiguous output: on the CPU its result has strides that ``filter2D``'s
    ``view`` refuses (the values are its own)."""

    def forward(self, x, quality):
        return super().forward(x, quality=quality).contiguous()


class _SeparableUSM(USMSharp):
    """BasicSR's ``USMSharp`` with its 51x51 Gaussian, the outer product of cv2's 1-D kernel, applied as
    two 1-D passes (same reflect padding): the same sums in another order at 1/25 of the multiplications,
    so that hundreds of 400 px batches fit a loaded 2-core CPU. ``--check-usm`` compares it with the original."""

    def __init__(self) -> None:
        super().__init__()
        self.k1 = torch.from_numpy(cv2.getGaussianKernel(self.radius, 0)).float().flatten()

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w, p = *x.shape, self.radius // 2
        x = F.pad(x, (p, p, p, p), mode="reflect").reshape(b * c, 1, h + 2 * p, w + 2 * p)
        x = F.conv2d(F.conv2d(x, self.k1.view(1, 1, 1, -1)), self.k1.view(1, 1, -1, 1))
        return x.view(b, c, h, w)

    def forward(self, img, weight=0.5, threshold=10):  # USMSharp.forward, filter2D -> _blur
        residual = img - self._blur(img)
        soft_mask = self._blur((torch.abs(residual) * 255 > threshold).float())
        sharp = torch.clip(img + weight * residual, 0, 1)
        return soft_mask * sharp + (1 - soft_mask) * img


def _source(usm: USMSharp):
    """Real-ESRGAN's dataset and model, built for the CPU (its constructors call ``.cuda()``)."""
    meta = HERE / "_meta_info.txt"
    meta.write_text("unused\n")
    ds = RealESRGANDataset({**SOURCE_DATASET, "dataroot_gt": ".", "meta_info": str(meta), "io_backend": {"type": "disk"}})
    meta.unlink()
    ds.file_client = _Regions()
    model = RealESRGANModel.__new__(RealESRGANModel)
    model.opt, model.is_train, model.device = SOURCE_MODEL, True, torch.device("cpu")
    model.jpeger, model.usm_sharpener = _JPEG(differentiable=False), usm
    model._dequeue_and_enqueue = lambda: None  # pool off: compare single batches
    return ds, model


def source_batch(ds, model, regions: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) of Real-ESRGAN's recipe for uint8 (400, 400, 3) regions."""
    ds.file_client.regions = {str(k): region for k, region in enumerate(regions)}
    ds.paths = list(ds.file_client.regions)
    items = [ds[k] for k in range(len(regions))]
    data = {key: torch.stack([it[key] for it in items]) for key in ("gt", "kernel1", "kernel2", "sinc_kernel")}
    model.feed_data(data)
    return model.lq, model.gt


def srlab_batch(deg, regions: list[np.ndarray], rngs: list[np.random.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt) of srlab's training path for the regions: its crop (``crop_for(256)``) drawn, degraded, cut."""
    crop = deg.crop_for(PATCH)
    crops, draws = [], []
    for region, rng in zip(regions, rngs):
        y, x = (int(v) for v in rng.integers(REGION - crop + 1, size=2))
        crops.append(region[y : y + crop, x : x + crop])
        draws.append(deg.draw(rng, crop, PATCH, True).to_item(deg.cfg.kernel_pad))
    gt = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy())  # uint8, as the loaders send it
    out = deg.batch_degradation()({"gt": gt, "degradation": collate_draws(draws)}, training=True)
    return out["lq"], out["gt"]


def _conv(grey: torch.Tensor, kernel: list[list[float]]) -> torch.Tensor:
    return F.conv2d(grey, torch.tensor(kernel, dtype=grey.dtype)[None, None])  # valid: no padding invented


def measures(lq: torch.Tensor, gt: torch.Tensor, border: int | None) -> dict[str, np.ndarray]:
    """The 8 measures per sample of (B, 3, 64, 64) ``lq``; ``border``: only the outer ``border`` pixels."""
    ref = F.interpolate(gt.double(), scale_factor=1 / SCALE, mode="bicubic", antialias=True, align_corners=False)
    lq, ref = lq.double() * 255, ref.clamp(0, 1) * 255
    h, w = lq.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    full = torch.ones(h, w, dtype=torch.bool)
    mask = full if border is None else (torch.minimum(torch.minimum(yy, h - 1 - yy), torch.minimum(xx, w - 1 - xx)) < border)
    inner = mask[1:-1, 1:-1]  # the centres of the valid 3x3 filters

    def mean(t: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return (t * m).flatten(1).sum(1) / m.sum()

    grey = (0.299 * lq[:, 0] + 0.587 * lq[:, 1] + 0.114 * lq[:, 2])[:, None]
    se = ((lq - ref) ** 2).mean(1, keepdim=True)
    out = {"psnr_vs_bicubic": 10 * torch.log10(255**2 / mean(se[:, 0], mask).clamp_min(1e-10))}
    # Immerkaer (1996): sigma = sqrt(pi / 2) / 6 * mean |I * M|
    m = _conv(grey, [[1, -2, 1], [-2, 4, -2], [1, -2, 1]])[:, 0].abs()
    out["noise_immerkaer"] = math.sqrt(math.pi / 2) / 6 * mean(m, inner)
    lap = _conv(grey, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])[:, 0]
    mu = mean(lap, inner)
    out["laplacian_var"] = mean((lap - mu[:, None, None]) ** 2, inner)
    g = torch.exp(-torch.arange(-3, 4, dtype=grey.dtype) ** 2 / 2)
    g = (g[:, None] * g[None]) / (g.sum() ** 2)
    blur = F.conv2d(grey, g[None, None])[:, 0]
    out["hf_energy"] = mean((grey[:, 0, 3:-3, 3:-3] - blur) ** 2, mask[3:-3, 3:-3])
    # steps between neighbours: across the 8 px grid lines of the patch (7|8, 15|16, ...) and elsewhere
    dx, dy = (grey[:, 0, :, 1:] - grey[:, 0, :, :-1]).abs(), (grey[:, 0, 1:] - grey[:, 0, :-1]).abs()
    on_x, on_y = (xx[:, :-1] % 8 == 7), (yy[:-1] % 8 == 7)
    mx, my = mask[:, :-1] & mask[:, 1:], mask[:-1] & mask[1:]
    across = (mean(dx, mx & on_x) * (mx & on_x).sum() + mean(dy, my & on_y) * (my & on_y).sum()) / (
        (mx & on_x).sum() + (my & on_y).sum())
    within = (mean(dx, mx & ~on_x) * (mx & ~on_x).sum() + mean(dy, my & ~on_y) * (my & ~on_y).sum()) / (
        (mx & ~on_x).sum() + (my & ~on_y).sum())
    out["blockiness"] = across / within.clamp_min(1e-6)
    for c, name in enumerate(("shift_r", "shift_g", "shift_b")):
        out[name] = mean(lq[:, c] - ref[:, c], mask)
    return {k: v.numpy() for k, v in out.items()}


def _grid(lqs: dict[str, torch.Tensor], path: Path, per_row: int = 8, zoom: int = 2) -> None:
    """Rows of LQ patches per pipeline (nearest-neighbour zoom), a label above each block."""
    side, label_h = 64 * zoom, 16
    blocks = []
    for name, lq in lqs.items():
        tiles = (lq[: 2 * per_row].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        rows = -(-len(tiles) // per_row)
        block = Image.new("RGB", (per_row * side, label_h + rows * side), (255, 255, 255))
        ImageDraw.Draw(block).text((4, 2), name, fill=(0, 0, 0))
        for i, tile in enumerate(tiles):
            block.paste(Image.fromarray(tile).resize((side, side), Image.NEAREST),
                        ((i % per_row) * side, label_h + (i // per_row) * side))
        blocks.append(block)
    sheet = Image.new("RGB", (blocks[0].width, sum(b.height for b in blocks)), (255, 255, 255))
    y = 0
    for b in blocks:
        sheet.paste(b, (0, y))
        y += b.height
    sheet.save(path)


def _table(values: dict, n: int) -> list[str]:
    lines = ["| measure | source mean | before mean | before vs source: D (p) | now mean | now vs source: D (p) |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in MEASURES:
        src, cells = values["source"][m], []
        for name in ("before", "now"):
            ks = ks_2samp(src, values[name][m])
            cells.append((values[name][m].mean(), f"{ks.statistic:.3f} ({ks.pvalue:.2g})"))
        lines.append(f"| {m} | {src.mean():.3f} | {cells[0][0]:.3f} | {cells[0][1]} | {cells[1][0]:.3f} | {cells[1][1]} |")
    return lines


def _pipeline(name: str, ds, model, degs: dict, regions: list[np.ndarray], seed: int, first: int):
    if name == "source":
        return source_batch(ds, model, regions)
    return srlab_batch(degs[name], regions, [np.random.default_rng([seed, name == "now", first + k])
                                             for k in range(len(regions))])


def _report(args, files, values: dict, n: int, seconds: dict, usm_diff: float) -> list[str]:
    lines = [f"n = {n} samples per pipeline (batches of {args.batch}: {-(-n // args.batch)} independent draws of the "
             f"batch-wide choices), seed {args.seed}, {len(files)} images of {Path(args.images).name}.", "",
             "### Whole 64 px LQ patch", "", *_table(values["whole"], n), "",
             f"### Outer {BORDER} LQ pixels alone", "", *_table(values["border"], n), "",
             f"### CPU seconds per batch of {BATCH} (this process, 1 thread)", "",
             "| pipeline | batches | median | min | max |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {len(s)} | {np.median(s):.3f} | {min(s):.3f} | {max(s):.3f} |" for name, s in seconds.items() if s]
    lines += ["", f"Separable USM vs BasicSR's USMSharp on two 400 px regions: max abs difference {usm_diff:.2e} "
              f"({usm_diff * 255:.2e} of an 8-bit level)."]
    return lines


def run(args: argparse.Namespace) -> list[str]:
    torch.set_num_threads(1)
    files = list_images(args.images)
    images = [read_image(p) for p in files]
    pick = np.random.default_rng(args.seed)
    regions = []
    for _ in range(args.n):
        img = images[int(pick.integers(len(images)))]
        y, x = int(pick.integers(img.shape[0] - REGION + 1)), int(pick.integers(img.shape[1] - REGION + 1))
        regions.append(np.ascontiguousarray(img[y : y + REGION, x : x + REGION]))
    random.seed(args.seed)  # the source draws from random, np.random and torch's global generator
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    ds, model = _source(_SeparableUSM())
    two = torch.from_numpy(np.stack(regions[:2]).transpose(0, 3, 1, 2).copy()).float() / 255
    usm_diff = (USMSharp()(two) - model.usm_sharpener(two)).abs().max().item()  # separable vs as shipped
    settings = {**preset("realesrgan"), "queue_size": 0}
    degs = {"before": build_degradation({**settings, "crop_size": PATCH}, SCALE), "now": build_degradation(settings, SCALE)}
    crops = {name: deg.crop_for(PATCH) for name, deg in degs.items()}
    assert crops == {"before": PATCH, "now": REGION}, crops
    # timings: batches of 16, CPU time of this process (other jobs' load on the machine hardly moves it)
    seconds = {name: [] for name in PIPELINES}
    lqs = {}
    for t in range(args.time_batches):
        for name in PIPELINES:
            start = time.process_time()
            lqs[name] = _pipeline(name, ds, model, degs, regions[t * BATCH : (t + 1) * BATCH], args.seed, 10**6 + t * BATCH)[0]
            seconds[name].append(time.process_time() - start)
    if args.shipped_batches:
        seconds["source, USMSharp as shipped"] = []
        shipped_ds, shipped = _source(USMSharp())
        for t in range(args.shipped_batches):
            start = time.process_time()
            source_batch(shipped_ds, shipped, regions[t * BATCH : (t + 1) * BATCH])
            seconds["source, USMSharp as shipped"].append(time.process_time() - start)
    if lqs:
        _grid({"Real-ESRGAN 0.3.0 (400 px crop degraded, 256 cut)": lqs["source"],
               "srlab now (400 px crop degraded, 256 cut)": lqs["now"],
               "srlab before (256 px patch degraded whole)": lqs["before"]}, args.out / "distribution_grid.png")
    # the distributions: smaller batches, so that the batch-wide draws (resize, noise type) are many
    per = {name: {"whole": [], "border": []} for name in PIPELINES}
    lines: list[str] = []
    for b in range(0, args.n, args.batch):
        for name in PIPELINES:
            lq, gt = _pipeline(name, ds, model, degs, regions[b : b + args.batch], args.seed, b)
            assert lq.shape[-1] == PATCH // SCALE and gt.shape[-1] == PATCH, (name, lq.shape, gt.shape)
            per[name]["whole"].append(measures(lq, gt, None))
            per[name]["border"].append(measures(lq, gt, BORDER))
        done = min(b + args.batch, args.n)
        if done % args.write_every == 0 or done == args.n:  # partial results survive a stopped run
            values = {where: {name: {m: np.concatenate([r[m] for r in per[name][where]]) for m in MEASURES}
                              for name in PIPELINES} for where in ("whole", "border")}
            lines = _report(args, files, values, done, seconds, usm_diff)
            (args.out / "distribution_check.md").write_text("\n".join(lines) + "\n")
            print(f"{done}/{args.n} written", flush=True)
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="folder of HQ photos at least 400 px a side")
    p.add_argument("-n", type=int, default=800, help="samples per pipeline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--batch", type=int, default=4, help="batch size of the distribution runs (default 4)")
    p.add_argument("--time-batches", type=int, default=2, help="batches of 16 timed through each pipeline")
    p.add_argument("--write-every", type=int, default=80, help="write the tables every this many samples")
    p.add_argument("--shipped-batches", type=int, default=1,
                   help="batches also timed through the source with BasicSR's 51x51 USMSharp as shipped (slow)")
    args = p.parse_args(argv)
    print("\n".join(run(args)))


if __name__ == "__main__":
    main()
