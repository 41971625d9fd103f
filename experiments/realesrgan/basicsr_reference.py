"""Reference numbers from BasicSR 1.4.2 for srlab's Real-ESRGAN degradation tests (run once, by hand).

Not a test and not part of srlab: it needs BasicSR, which srlab never depends on. It computes, with
BasicSR's own functions, the blur kernels (``basicsr.data.degradations``), the USM kernel, DiffJPEG
and two full second-order degradations with every random choice fixed (the steps of Real-ESRGAN's
``RealESRNetModel.feed_data``, called in the same order with the same BasicSR functions; torch's
global RNG seeded before the first noise draw), and writes them as literals to
``tests/data/realesrgan_reference.py``. It also prints how far DiffJPEG is from OpenCV's libjpeg.

    basicsr-venv/bin/python experiments/realesrgan/basicsr_reference.py   # venv with basicsr==1.4.2

(the venv made as in ``experiments/benchmarks/compare_basicsr.py``; its ``.pth`` aliases
``torchvision.transforms.functional_tensor`` for BasicSR.)
"""

from __future__ import annotations

import inspect
import math
import platform
import sys
from pathlib import Path

import cv2
import numpy as np
import scipy
import torch
import torch.nn.functional as F
from basicsr.data import degradations as bd
from basicsr.utils import DiffJPEG, USMSharp
from basicsr.utils.img_process_util import filter2D

import basicsr

OUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "realesrgan_reference.py"
MODES = ("area", "bilinear", "bicubic")


def test_image(h: int = 64, w: int = 64) -> np.ndarray:
    """A deterministic uint8 (h, w, 3) test picture: smooth ramps, a ring, sharp bars and a checkerboard."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.5 + 0.5 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = (x + y) / (h + w - 2)
    b = 0.5 + 0.5 * np.cos(np.hypot(x - w / 3, y - h / 2) / 3.0)
    img = np.stack([r, g, b], axis=-1)
    img[:, (w * 5) // 8 : (w * 5) // 8 + 3] = [1.0, 0.1, 0.2]  # a sharp bar: JPEG ringing
    img[(h * 3) // 4 :, : w // 4] = ((x[(h * 3) // 4 :, : w // 4] // 2 + y[(h * 3) // 4 :, : w // 4] // 2) % 2)[..., None]
    return np.round(img * 255).astype(np.uint8)


# --- kernels: (name, builder in BasicSR, params) ------------------------------------------------------
KERNELS = [
    ("iso_7", "iso", dict(size=7, sigma_x=1.3, sigma_y=1.3, theta=0.0)),
    ("aniso_7", "aniso", dict(size=7, sigma_x=2.1, sigma_y=0.7, theta=0.6)),
    ("generalized_iso_7", "generalized_iso", dict(size=7, sigma_x=1.1, sigma_y=1.1, theta=0.0, beta=2.5)),
    ("generalized_aniso_7", "generalized_aniso", dict(size=7, sigma_x=0.8, sigma_y=2.6, theta=-2.2, beta=0.6)),
    ("plateau_iso_7", "plateau_iso", dict(size=7, sigma_x=1.7, sigma_y=1.7, theta=0.0, beta=1.4)),
    ("plateau_aniso_7", "plateau_aniso", dict(size=7, sigma_x=1.5, sigma_y=2.8, theta=-1.2, beta=1.6)),
    ("sinc_7", "sinc", dict(size=7, omega_c=1.9)),
    ("aniso_21", "aniso", dict(size=21, sigma_x=2.9, sigma_y=0.4, theta=2.8)),
    ("sinc_13_pad21", "sinc", dict(size=13, omega_c=0.9, pad_to=21)),
]


def basicsr_kernel(kind: str, p: dict) -> np.ndarray:
    iso = not kind.endswith("aniso")
    if kind == "sinc":
        return bd.circular_lowpass_kernel(p["omega_c"], p["size"], pad_to=p.get("pad_to", 0))
    args = (p["size"], p["sigma_x"], p["sigma_y"], p["theta"])
    if kind in ("iso", "aniso"):
        return bd.bivariate_Gaussian(*args, isotropic=iso)
    if kind.startswith("generalized"):
        return bd.bivariate_generalized_Gaussian(*args, p["beta"], isotropic=iso)
    return bd.bivariate_plateau(*args, p["beta"], isotropic=iso)


# --- two full degradations with every choice fixed -------------------------------------------------------
PIPELINES = {
    "a": dict(
        usm=False, seed=1234,
        kernel1=dict(type="aniso", size=15, sigma_x=2.1, sigma_y=0.7, theta=0.6),
        kernel2=dict(type="generalized_iso", size=9, sigma_x=1.1, sigma_y=1.1, theta=0.0, beta=2.5),
        sinc=dict(type="sinc", size=11, omega_c=1.9),
        stage1=dict(resize="down", resize_scale=0.6, resize_mode="bicubic", gaussian=True, sigma=12.5,
                    poisson_scale=1.0, gray=True, jpeg_quality=47.3),
        second_blur=True,
        stage2=dict(resize="up", resize_scale=1.1, resize_mode="bilinear", gaussian=False, sigma=5.0,
                    poisson_scale=1.7, gray=False, jpeg_quality=71.9),
        final_resize_first=True, final_mode="area"),
    "b": dict(
        usm=True, seed=99,
        kernel1=dict(type="plateau_aniso", size=21, sigma_x=1.5, sigma_y=2.8, theta=-1.2, beta=1.6),
        kernel2=dict(type="sinc", size=13, omega_c=0.9),
        sinc=dict(type="sinc", size=21, omega_c=2.5),
        stage1=dict(resize="up", resize_scale=1.3, resize_mode="area", gaussian=False, sigma=3.0,
                    poisson_scale=2.2, gray=True, jpeg_quality=88.0),
        second_blur=False,
        stage2=dict(resize="down", resize_scale=0.7, resize_mode="bicubic", gaussian=True, sigma=9.0,
                    poisson_scale=0.5, gray=False, jpeg_quality=33.0),
        final_resize_first=False, final_mode="bicubic"),
}


def _kernel_tensor(spec: dict) -> torch.Tensor:
    k = basicsr_kernel(spec["type"], spec)
    k = np.pad(k, (21 - spec["size"]) // 2)  # Real-ESRGAN's dataset pads every kernel to 21
    return torch.FloatTensor(k)[None]


def _noise(out: torch.Tensor, s: dict) -> torch.Tensor:
    gray = out.new_tensor([float(s["gray"])])
    if s["gaussian"]:
        return bd.add_gaussian_noise_pt(out, sigma=out.new_tensor([s["sigma"]]), gray_noise=gray, clip=True, rounds=False)
    return bd.add_poisson_noise_pt(out, scale=out.new_tensor([s["poisson_scale"]]), gray_noise=gray, clip=True, rounds=False)


def basicsr_pipeline(gt: torch.Tensor, p: dict, scale: int = 4) -> np.ndarray:
    """RealESRNetModel.feed_data with its random draws replaced by ``p`` (batch of one)."""
    jpeger = DiffJPEG(differentiable=False)
    if p["usm"]:
        gt = USMSharp()(gt)
    ori_h, ori_w = gt.shape[2:4]
    torch.manual_seed(p["seed"])
    out = filter2D(gt, _kernel_tensor(p["kernel1"]))
    s1 = p["stage1"]
    if s1["resize"] != "keep":
        out = F.interpolate(out, scale_factor=s1["resize_scale"], mode=s1["resize_mode"])
    out = _noise(out, s1)
    out = jpeger(torch.clamp(out, 0, 1), quality=out.new_tensor([s1["jpeg_quality"]]))
    if p["second_blur"]:
        out = filter2D(out, _kernel_tensor(p["kernel2"]))
    s2 = p["stage2"]
    out = F.interpolate(out, size=(int(ori_h / scale * s2["resize_scale"]), int(ori_w / scale * s2["resize_scale"])),
                        mode=s2["resize_mode"])
    out = _noise(out, s2)
    size = (ori_h // scale, ori_w // scale)
    sinc = _kernel_tensor(p["sinc"])
    if p["final_resize_first"]:
        out = filter2D(F.interpolate(out, size=size, mode=p["final_mode"]), sinc)
        out = jpeger(torch.clamp(out, 0, 1), quality=out.new_tensor([s2["jpeg_quality"]]))
    else:
        out = jpeger(torch.clamp(out, 0, 1), quality=out.new_tensor([s2["jpeg_quality"]]))
        out = filter2D(F.interpolate(out, size=size, mode=p["final_mode"]), sinc)
    lq = torch.clamp((out * 255.0).round(), 0, 255)
    return lq[0].permute(1, 2, 0).to(torch.uint8).numpy()


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).float()[None] / 255


def _fmt(a: np.ndarray) -> str:
    rows = ",\n    ".join("[" + ", ".join(f"{v:.17g}" for v in row) + "]" for row in a)
    return f"[\n    {rows},\n]"


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(1)
    img = test_image()
    gt = _to_tensor(img)
    lines = [
        '"""Generated by experiments/realesrgan/basicsr_reference.py from BasicSR; do not edit.',
        "",
        f"basicsr {basicsr.__version__}, torch {torch.__version__}, numpy {np.__version__}, scipy {scipy.__version__},",
        f"opencv {cv2.__version__}, python {platform.python_version()}.",
        '"""',
        "# ruff: noqa: E501",
        "",
        "import numpy as np",
        "",
        "",
        inspect.getsource(test_image).rstrip(),
        "",
        "",
        f"KERNEL_PARAMS = {[(n, k, p) for n, k, p in KERNELS]!r}",
        "",
    ]
    for name, kind, p in KERNELS:
        lines.append(f"KERNEL_{name.upper()} = {_fmt(basicsr_kernel(kind, p))}")
    usm_taps = cv2.getGaussianKernel(51, 0).ravel()
    lines.append(f"USM_TAPS_51 = [{', '.join(f'{v:.17g}' for v in usm_taps)}]")
    usm = USMSharp()(gt)
    lines.append(f"USM_OF_TEST_IMAGE_SUM = {float(usm.double().sum()):.17g}  # sum over (1, 3, 64, 64)")
    lines.append(f"USM_OF_TEST_IMAGE_HEX = {(usm * 255).round().clamp(0, 255).to(torch.uint8).numpy().tobytes().hex()!r}")
    # DiffJPEG on a 20 x 36 crop (padding to 16 exercised), two qualities in one batch
    crop = torch.cat([gt[..., :20, :36], gt[..., 30:50, 10:46]])
    jpg = DiffJPEG(differentiable=False)(crop, quality=crop.new_tensor([37.5, 83.2]))
    lines.append("JPEG_QUALITIES = [37.5, 83.2]  # on test_image()[:20, :36] and [30:50, 10:46]")
    lines.append(f"JPEG_DIFFJPEG_255_HEX = {(jpg * 255).round().to(torch.uint8).numpy().tobytes().hex()!r}")
    lines.append(f"PIPELINES = {PIPELINES!r}")
    for key, p in PIPELINES.items():
        lq = basicsr_pipeline(gt, p)
        lines.append(f"PIPELINE_{key.upper()}_LQ_HEX = {lq.tobytes().hex()!r}  # (16, 16, 3) uint8")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")

    # how far DiffJPEG (Real-ESRGAN's JPEG) is from libjpeg through OpenCV, in 8-bit levels, on a photo
    from skimage import data

    photo = data.astronaut()[:256, :256]
    for q in (30, 50, 70, 95):
        _, enc = cv2.imencode(".jpg", np.ascontiguousarray(photo[..., ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), q])
        cv = cv2.imdecode(enc, 1)[..., ::-1].astype(np.float64)
        dj = DiffJPEG(differentiable=False)(_to_tensor(photo), quality=torch.tensor([float(q)]))
        dj = (dj[0].permute(1, 2, 0).double().numpy() * 255).round()
        d = np.abs(cv - dj)
        print(f"astronaut[:256, :256], quality {q}: DiffJPEG vs OpenCV libjpeg mean |diff| {d.mean():.2f}, "
              f"99th percentile {np.percentile(d, 99):.0f}, max {d.max():.0f} levels; libjpeg vs the original: "
              f"mean {np.abs(cv - photo).mean():.2f}, DiffJPEG vs the original: mean {np.abs(dj - photo).mean():.2f}")

if __name__ == "__main__":
    sys.exit(main())
