"""ONNX export with a parity check, and an onnxruntime backend that runs like a torch generator.

Needs the optional ``deploy`` extra (``pip install 'srlab[deploy]'``: onnx, onnxruntime); without
it every entry point says so in one line. The graph takes ``lq`` (B, 3, H, W) float32 in [0, 1]
with dynamic batch, height and width and returns ``sr`` (B, 3, H*scale, W*scale); input
normalization (``data.normalize``) is inside it. ``fp16`` stores half-precision weights (half the
file) and computes in half where the runtime has fp16 kernels (GPUs); input and output stay
float32, so callers never change. onnxruntime's CPU provider turns the fp16 weights back into fp32
when it loads the graph (seen in its optimized graph), so there it saves disk, not time.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srlab.errors import SRLabError, first_line
from srlab.weights.files import META_CARD, META_NET_CONFIG, card_from_json

EXTRA = "pip install 'srlab[deploy]'"
OPSET = 17
# ONNX vs torch on the check image, max abs difference of raw outputs in [0, 1] units
TOLERANCE = {False: 1e-4, True: 1e-2}
META_SCALE, META_PRECISION = "srlab_scale", "srlab_precision"  # beside META_NET_CONFIG, the key every srlab export uses


def require(what: str) -> None:
    """Fail in one line when onnx/onnxruntime are missing.

    Args:
        what: the feature asked for, e.g. ``--backend onnxruntime``.
    """
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise SRLabError(f"{what} needs {module}, part of srlab's deploy extra: {EXTRA}") from None


class _HalfInside(nn.Module):
    """float32 in and out, half-precision weights and compute in between."""

    def __init__(self, gen: nn.Module) -> None:
        super().__init__()
        self.gen = copy.deepcopy(gen).half()

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        return self.gen(lq.half()).float()


def export_onnx(gen: nn.Module, path: str | Path, fp16: bool = False) -> Path:
    """Write ``gen`` (an ``SRGenerator`` on the CPU) as an ONNX graph with dynamic batch/height/width.

    Uses TorchScript tracing (``dynamo=False``): it exports every srlab net, SwinIR included, in
    well under a minute, where the dynamo exporter fails on SwinIR's shifted windows. The scale,
    net config, precision and model card go into the model's metadata.

    Args:
        gen: the generator, fp32, eval mode; ``gen.scale`` and ``gen.net_config`` are recorded.
        path: the ``.onnx`` file to write.
        fp16: half-precision weights and compute (float32 input/output).
    """
    require("export --onnx")
    import onnx

    path = Path(path)
    gen = gen.float().cpu().eval()
    module = _HalfInside(gen) if fp16 else gen
    example = torch.rand(1, 3, 32, 32)
    axes = {"lq": {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shape arithmetic and the legacy exporter's deprecation
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET, input_names=["lq"],
                          output_names=["sr"], dynamic_axes=axes)  # fmt: skip
    model = onnx.load(str(path))
    meta = {META_SCALE: str(gen.scale), META_NET_CONFIG: json.dumps(getattr(gen, "net_config", {}) or {}),
            META_PRECISION: "fp16" if fp16 else "fp32"}  # fmt: skip
    if getattr(gen, "card", None) is not None:
        meta[META_CARD] = json.dumps(gen.card)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def check_parity(gen: nn.Module, onnx_path: str | Path, image: np.ndarray) -> float:
    """Max abs difference between onnxruntime and torch outputs on ``image`` (H, W, 3) uint8; ``gen`` loaded in fp32."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div(255)[None]
    with torch.inference_mode():
        reference = gen.float().cpu()(x).numpy()
    out = OnnxGenerator(onnx_path)(x).numpy()
    if out.shape != reference.shape:
        raise SRLabError(f"{onnx_path}: output {out.shape} but torch gives {reference.shape}")
    return float(np.abs(out - reference).max())


class OnnxGenerator(nn.Module):
    """An ONNX file behind the interface of ``SRGenerator``: ``scale``, ``net_config``, ``card``, ``forward``.

    It has no parameters; ``srlab.infer.upscale_array`` then feeds it float32 CPU tensors, so
    tiling, naming, alpha and 16-bit handling are the torch backend's.

    Args:
        path: an ``.onnx`` file with one image input and one image output.
        device: ``cuda`` uses onnxruntime's CUDA provider when installed, anything else the CPU.
    """

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        super().__init__()
        require("--backend onnxruntime")
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise SRLabError(f"{path}: no such ONNX file")
        cuda = str(device).startswith(("cuda", "auto")) and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no per-node provider chatter on stderr
        # the CPU arena keeps every tile's peak allocation: RRDBNet x4 on 138 px tiles peaks at 0.44 GiB
        # with it, 0.27 GiB without, same speed (experiments/benchmarks/nets_backends.md)
        options.enable_cpu_mem_arena = False
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind types; all mean "cannot load"
            raise SRLabError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1 or len(inputs[0].shape) != 4:
            raise SRLabError(f"{path}: expected one (B, C, H, W) image input, found {[i.shape for i in inputs]}")
        self.input_name = inputs[0].name
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        meta = self.session.get_modelmeta().custom_metadata_map
        self.net_config = json.loads(meta.get(META_NET_CONFIG, "{}") or "{}")
        self.card = card_from_json(meta.get(META_CARD), str(path))
        self.scale = int(meta[META_SCALE]) if META_SCALE in meta else self._probe_scale(path)

    def _probe_scale(self, path: Path) -> int:
        try:
            out = self(torch.zeros(1, 3, 16, 16))
        except SRLabError as exc:
            raise SRLabError(f"{path}: cannot find its scale with a 16x16 test input ({exc})") from None
        return out.shape[-1] // 16

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """``lq`` (B, 3, h, w) float in [0, 1] -> ``sr`` (B, 3, h*scale, w*scale) float32 CPU tensor."""
        arr = np.ascontiguousarray(lq.detach().cpu().float().numpy(), dtype=self.input_dtype)
        try:
            out = self.session.run(None, {self.input_name: arr})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            raise SRLabError(f"onnxruntime failed on a {tuple(arr.shape)} input ({first_line(exc)})") from None
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def onnx_generator(gen: nn.Module, device: str = "cpu") -> OnnxGenerator:
    """Export a torch generator to a temporary ONNX file and open it with onnxruntime."""
    require("--backend onnxruntime")
    with tempfile.TemporaryDirectory(prefix="srlab-onnx-") as tmp:
        path = export_onnx(gen, Path(tmp) / "generator.onnx")
        # the session holds the whole model in memory, so the file can go
        return OnnxGenerator(path, device)
