"""BasicSR's LMDB image store, read as it is: ``NAME.lmdb/`` with ``data.mdb`` and ``meta_info.txt``.

BasicSR's ``create_lmdb.py`` (``basicsr.utils.lmdb_util``) stores each image as its encoded file (PNG
by default) under the key ``name`` without extension, and lists the images in ``meta_info.txt``, one
line each: ``0001_s001.png (480,480,3) 1`` (file name, ``(h,w,c)``, PNG compression level).

:func:`open_store` checks the store against its own list before any training: the list parses, the
database holds exactly those keys, and each record's header has the listed size (the header only: a
few KiB per record, not the images). A record that still fails its full decode during training is
named ``NAME.lmdb/key`` and replaced by another draw, as a bad file in a folder is.

The environment is opened lazily in each process (LMDB handles must not cross a ``fork``), read-only
and without the lock file, as BasicSR does, so a store on a read-only volume works.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from srlab.data.images import ImageReadError, decode_rgb, open_image
from srlab.errors import SRLabError

_META = re.compile(r"^(?P<name>\S+)\s+\((?P<h>\d+),\s*(?P<w>\d+),\s*(?P<c>\d+)\)(?:\s+(?P<level>\S+))?\s*$")
# PNG's IHDR sits in the first 33 bytes; JPEG's SOF follows EXIF, which rarely exceeds this
_HEADER_BYTES = 1 << 16
_SHOWN = 3  # names listed in an error before "..."
# (pid, real path) -> environment: opened lazily where records are read; a forked worker opens its own
_ENVS: dict[tuple[int, str], object] = {}


def _close_before_fork() -> None:
    """py-lmdb refuses to open a store twice in one process, and a forked child inherits that record of
    its parent's open stores (and must not use them): a DataLoader worker forked after the validation
    crops read a store could not read it. Closing them before any fork lets each process reopen its own."""
    for key in [key for key in _ENVS if key[0] == os.getpid()]:
        _ENVS.pop(key).close()


os.register_at_fork(before=_close_before_fork)


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise SRLabError("data=lmdb needs the lmdb package: pip install 'srlab[data]' (or pip install lmdb)") from None
    return lmdb


def read_meta(folder: Path) -> dict[str, tuple[int, int, int]]:
    """``meta_info.txt`` of a store as ``{key: (h, w, c)}`` in file order (key = name without extension).

    Raises:
        SRLabError: the file is missing, empty, has a line that is not ``name (h,w,c) [level]``, or lists a key twice.
    """
    meta = folder / "meta_info.txt"
    if not meta.is_file():
        raise SRLabError(f"{meta} is missing; an LMDB in BasicSR's layout lists its images there "
                         "(basicsr/scripts/data_preparation/create_lmdb.py writes it)")
    out: dict[str, tuple[int, int, int]] = {}
    for n, line in enumerate(meta.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = _META.match(line.strip())
        if m is None:
            raise SRLabError(f"{meta}:{n}: {line.strip()[:80]!r} is not 'name (h,w,c) compression'")
        key = m["name"].rsplit(".", 1)[0] if "." in m["name"] else m["name"]
        if key in out:
            raise SRLabError(f"{meta}:{n}: {key} is listed twice")
        out[key] = (int(m["h"]), int(m["w"]), int(m["c"]))
    if not out:
        raise SRLabError(f"{meta} lists no images")
    return out


def check_location(path: str | os.PathLike, key: str) -> Path:
    """A store's folder, checked cheaply (exists, has ``data.mdb`` and ``meta_info.txt``); ``key`` names the setting."""
    if path is None:
        raise SRLabError(f"{key} is not set; pass {key}=/path/to/NAME.lmdb (BasicSR's layout)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SRLabError(f"{key}={folder} {what}; expected an LMDB folder with data.mdb and meta_info.txt")
    for name in ("data.mdb", "meta_info.txt"):
        if not (folder / name).is_file():
            raise SRLabError(f"{key}={folder}: {name} is missing; expected an LMDB in BasicSR's layout")
    return folder


@dataclass(eq=False)  # hashed by identity: records of one store are equal, of two stores not
class LmdbStore:
    """One opened store: its keys and sizes, and the records read on demand (in any process).

    Args:
        folder: the ``NAME.lmdb`` folder.
        meta: ``{key: (h, w, c)}`` from ``meta_info.txt``.
    """

    folder: Path
    meta: dict[str, tuple[int, int, int]]

    def env(self):
        """This process's read-only environment of the folder (one per process: lmdb refuses a second)."""
        where = (os.getpid(), os.path.realpath(self.folder))
        if where not in _ENVS:
            try:
                _ENVS[where] = _lmdb().open(str(self.folder), readonly=True, lock=False, readahead=False,
                                            meminit=False, max_readers=512)
            except Exception as exc:  # noqa: BLE001 - lmdb.Error subclasses for every kind of damage
                raise SRLabError(f"{self.folder}: not a readable LMDB ({type(exc).__name__}: {exc})") from None
        return _ENVS[where]

    def close(self) -> None:
        """Close this process's environment (the next read opens it again)."""
        env = _ENVS.pop((os.getpid(), os.path.realpath(self.folder)), None)
        if env is not None:
            env.close()

    def name(self, key: str) -> str:
        """How a record is named in logs and errors: ``NAME.lmdb/key``."""
        return f"{self.folder}/{key}"

    def get(self, key: str, head: int | None = None) -> bytes:
        """The record's bytes (the first ``head`` bytes only, when given)."""
        with self.env().begin(buffers=True) as txn:
            value = txn.get(key.encode())
            if value is None:
                raise ImageReadError(self.name(key), "listed in meta_info.txt but not in data.mdb")
            return bytes(value[:head] if head else value)

    def record(self, key: str) -> "LmdbRecord":
        return LmdbRecord(self, key)


@dataclass(frozen=True)
class LmdbRecord:
    """One image of a store; datasets use it where they would use a file path (``load_rgb``, ``str``)."""

    store: LmdbStore
    key: str

    def __str__(self) -> str:
        return self.store.name(self.key)

    def load_rgb(self, max_pixels: int | None = None):
        """Decode to 8-bit RGB (PIL), as :func:`srlab.data.images.load_rgb` reads a file."""
        return decode_rgb(self.store.get(self.key), str(self), max_pixels)


def header_size(store: LmdbStore, key: str, max_pixels: int | None = None) -> tuple[int, int]:
    """``(w, h)`` from a record's header, reading its first bytes only (the whole record if that fails)."""
    name = store.name(key)
    for head in (_HEADER_BYTES, None):
        data = store.get(key, head)
        if not data:
            raise ImageReadError(name, "empty record (0 bytes)")
        try:
            with open_image(io.BytesIO(data), max_pixels, name=name) as img:
                return img.size
        except ImageReadError:
            if head is None or len(data) < head:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def open_store(path: str | os.PathLike, key: str = "data.hq_lmdb",
               max_pixels: int | None = None) -> tuple[LmdbStore, dict[str, tuple[int, int]], list[tuple[str, str]]]:
    """Open a store and check it against its ``meta_info.txt``.

    Args:
        path: the ``NAME.lmdb`` folder.
        key: the setting that named it (for the error lines).
        max_pixels: refuse records with more pixels.

    Returns:
        ``(store, sizes, bad)``: ``{key: (w, h)}`` of the usable records, ``[(name, reason)]`` of records
        whose header cannot be read (skipped, as bad files in a folder are).

    Raises:
        SRLabError: one line, when the folder, the database or the list is missing or damaged, or the
            list and the data disagree (a key only in one of them, another size).
    """
    folder = check_location(path, key)
    store = LmdbStore(folder, read_meta(folder))
    env = store.env()
    try:
        with env.begin() as txn:
            stored = {k.decode(errors="replace") for k in txn.cursor().iternext(keys=True, values=False)}
    except Exception as exc:  # noqa: BLE001
        raise SRLabError(f"{key}={folder}: data.mdb cannot be read ({type(exc).__name__}: {exc})") from None
    missing, extra = [k for k in store.meta if k not in stored], sorted(stored - set(store.meta))
    if missing or extra:
        parts = [f"{len(v)} {where} ({', '.join(v[:_SHOWN])}{', ...' if len(v) > _SHOWN else ''})"
                 for v, where in ((missing, "listed in meta_info.txt but not in data.mdb"),
                                  (extra, "in data.mdb but not in meta_info.txt")) if v]
        raise SRLabError(f"{key}={folder}: meta_info.txt disagrees with data.mdb: {'; '.join(parts)}")
    sizes, bad, wrong = {}, [], []
    for k, (h, w, _c) in store.meta.items():
        try:
            size = header_size(store, k, max_pixels)
        except ImageReadError as exc:
            bad.append((store.name(k), exc.reason))
            continue
        if size != (w, h):
            wrong.append(f"{k} is {size[0]}x{size[1]}, listed {w}x{h}")
        sizes[k] = size
    if wrong:
        raise SRLabError(f"{key}={folder}: meta_info.txt disagrees with data.mdb: {len(wrong)} record(s) of another "
                         f"size ({'; '.join(wrong[:_SHOWN])}{'; ...' if len(wrong) > _SHOWN else ''})")
    return store, sizes, bad
