"""What a command's input arguments mean: files, folders (their images) and glob patterns, expanded once.

``srlab.upscale`` and ``srlab.degrade`` take the same inputs and report the same bad ones.
"""

from __future__ import annotations

import errno
import glob
import os
from pathlib import Path

from srlab.data.images import list_images


def resolve_path(path: Path) -> Path | None:
    """``path.resolve()``, or None where it cannot be resolved (a symlink loop raises RuntimeError on 3.11)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def _resolve_reason(path: Path) -> str:
    try:
        path.resolve()
    except RuntimeError:
        return "symlink loop, the path never reaches a file"
    except OSError as exc:
        return "symlink loop, the path never reaches a file" if exc.errno == errno.ELOOP else f"unresolvable ({exc})"
    return "unresolvable path"


def expand_inputs(items: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (their images, not recursive) and globs -> (unique files in order, [(item, reason)])."""
    files, bad, seen = [], [], set()
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = list_images(p, recursive=False)
            if not found:
                bad.append((item, "folder holds no images"))
        elif p.exists() or p.is_symlink():
            found = [p]
        elif glob.has_magic(item):
            found = sorted(Path(f) for f in glob.glob(os.path.expanduser(item), recursive=True) if Path(f).is_file())
            if not found:
                bad.append((item, "pattern matches no files"))
        else:
            found = []
            bad.append((item, "no such file or folder"))
        for f in found:
            key = resolve_path(f)
            if key is None:
                bad.append((str(f), _resolve_reason(f)))
            elif key not in seen:
                seen.add(key)
                files.append(f)
    return files, bad
