"""Blur kernels of Real-ESRGAN's degradation (Wang et al. 2021, Sec. 3.1), in numpy float64.

Gaussian (isotropic / anisotropic), generalized Gaussian, plateau and the circular low-pass
("sinc") filter, built on the same integer grid and with the same formulas as BasicSR's
``basicsr.data.degradations``, so equal parameters give equal kernels (tested to 1e-6 against
numbers BasicSR produced: ``experiments/realesrgan/basicsr_reference.py``).

Every kernel is normalised to sum 1 and is square with an odd side; :func:`pad_kernel` centres it
in a larger square so that kernels of different sizes stack into one batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

# the kernel families of Real-ESRGAN's `kernel_list`
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def mesh_grid(size: int) -> np.ndarray:
    """(size, size, 2) grid of (x, y) offsets from the centre pixel; ``[..., 0]`` varies along columns."""
    ax = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1)


def sigma_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Covariance ``R diag(sigma_x^2, sigma_y^2) R^T`` of a Gaussian rotated by ``theta`` radians."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    return rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T


def _quadratic_form(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """``d^T Sigma^-1 d`` for every grid offset d: (size, size)."""
    grid = mesh_grid(size)
    inv = np.linalg.inv(sigma_matrix(sigma_x, sigma_y, theta))
    return np.sum((grid @ inv) * grid, axis=-1)


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Bivariate Gaussian ``exp(-q / 2)``; isotropic when ``sigma_x == sigma_y``."""
    k = np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta))
    return k / k.sum()


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Generalized Gaussian ``exp(-q^beta / 2)`` (Pascal et al. 2013); beta = 1 is the Gaussian."""
    k = np.exp(-0.5 * np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta))
    return k / k.sum()


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped ``1 / (1 + q^beta)``: flat top, heavy tails."""
    k = np.reciprocal(np.power(_quadratic_form(size, sigma_x, sigma_y, theta), beta) + 1)
    return k / k.sum()


def sinc_kernel(size: int, omega_c: float) -> np.ndarray:
    """Circularly symmetric ideal low-pass filter with cut-off ``omega_c`` radians (pi = Nyquist).

    ``omega_c J1(omega_c r) / (2 pi r)``, with its limit ``omega_c^2 / (4 pi)`` at r = 0; it makes the
    ringing and overshoot artifacts of sharpening and band-limited resampling.
    """
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(x - c, y - c)
    with np.errstate(divide="ignore", invalid="ignore"):  # r = 0 at the centre, replaced below
        k = omega_c * special.j1(omega_c * r) / (2 * np.pi * r)
    k[size // 2, size // 2] = omega_c**2 / (4 * np.pi)
    return k / k.sum()


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Centre ``kernel`` in a ``size`` x ``size`` square of zeros (both sides odd)."""
    p = (size - kernel.shape[0]) // 2
    return np.pad(kernel, ((p, p), (p, p))) if p > 0 else kernel


@dataclass(frozen=True)
class KernelSpec:
    """One drawn kernel: its family and parameters (what the preview writes to JSON).

    Attributes:
        type: one of :data:`KERNEL_TYPES` or ``"sinc"``.
        size: odd side in pixels, before padding.
        sigma_x, sigma_y, theta: Gaussian shape (``theta`` in radians); unused by ``sinc``.
        beta: shape of the generalized / plateau families, else None.
        omega_c: cut-off of ``sinc`` in radians, else None.
    """

    type: str
    size: int
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    theta: float = 0.0
    beta: float | None = None
    omega_c: float | None = None

    def build(self, pad_to: int | None = None) -> np.ndarray:
        """The normalised (size, size) kernel, centred in ``pad_to`` x ``pad_to`` when given."""
        args = (self.size, self.sigma_x, self.sigma_y, self.theta)
        if self.type == "sinc":
            k = sinc_kernel(self.size, self.omega_c)
        elif self.type in ("iso", "aniso"):
            k = gaussian_kernel(*args)
        elif self.type.startswith("generalized"):
            k = generalized_gaussian_kernel(*args, self.beta)
        elif self.type.startswith("plateau"):
            k = plateau_kernel(*args, self.beta)
        else:
            raise ValueError(f"unknown kernel type {self.type!r}")
        return pad_kernel(k, pad_to) if pad_to else k

    def to_json(self) -> dict:
        """Only the fields this family uses."""
        d = asdict(self)
        if self.type == "sinc":
            return {"type": "sinc", "size": self.size, "omega_c": self.omega_c}
        if self.type.endswith("iso") and not self.type.endswith("aniso"):
            d = {k: v for k, v in d.items() if k not in ("sigma_y", "theta")}
        return {k: v for k, v in d.items() if v is not None and k != "omega_c"}


def _beta(rng: np.random.Generator, beta_range: tuple[float, float]) -> float:
    # BasicSR draws beta below or above 1 with equal odds (a range starting at 1 thus gives
    # beta = 1 half of the time); kept, since Real-ESRGAN's models were trained on it
    if rng.random() < 0.5:
        return float(rng.uniform(beta_range[0], 1))
    return float(rng.uniform(1, beta_range[1]))


def draw_kernel(
    rng: np.random.Generator,
    sizes: tuple[int, ...],
    kernel_list: tuple[str, ...],
    kernel_prob: tuple[float, ...],
    sinc_prob: float,
    blur_sigma: tuple[float, float],
    betag_range: tuple[float, float],
    betap_range: tuple[float, float],
    sinc_cutoff_small: tuple[float, float],
    sinc_cutoff_large: tuple[float, float],
) -> KernelSpec:
    """Draw one blur kernel the way Real-ESRGAN's dataset does.

    The side is uniform over ``sizes``; with probability ``sinc_prob`` a sinc filter, its cut-off
    uniform in ``sinc_cutoff_small`` (sides below 13) or ``sinc_cutoff_large`` (in units of pi);
    otherwise a family from ``kernel_list`` with ``kernel_prob``, sigmas uniform in ``blur_sigma``,
    rotation uniform in [-pi, pi] (anisotropic families) and beta as :func:`_beta`.
    """
    size = int(rng.choice(sizes))
    if rng.random() < sinc_prob:
        # narrow kernels cannot represent low cut-offs, hence the smaller range below 13 px
        lo, hi = sinc_cutoff_small if size < 13 else sinc_cutoff_large
        return KernelSpec("sinc", size, omega_c=float(rng.uniform(lo, hi)) * math.pi)
    kind = str(kernel_list[rng.choice(len(kernel_list), p=np.asarray(kernel_prob) / np.sum(kernel_prob))])
    sigma_x = float(rng.uniform(*blur_sigma))
    if kind.endswith("aniso"):
        sigma_y, theta = float(rng.uniform(*blur_sigma)), float(rng.uniform(-math.pi, math.pi))
    else:
        sigma_y, theta = sigma_x, 0.0
    beta = None
    if kind.startswith("generalized"):
        beta = _beta(rng, betag_range)
    elif kind.startswith("plateau"):
        beta = _beta(rng, betap_range)
    return KernelSpec(kind, size, sigma_x, sigma_y, theta, beta)
