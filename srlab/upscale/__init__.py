"""``python -m srlab.upscale``: the command (:mod:`.cli`), output naming (:mod:`.output`), the before/after page (:mod:`.page`)."""

from srlab.upscale.cli import main, run, safe_name, upscale_image

__all__ = ["main", "run", "safe_name", "upscale_image"]
