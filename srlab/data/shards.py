"""Streaming shards: sub-images written once by ``srlab.prepare --format litdata``, read by ``data=streaming``.

Lightning's `litdata <https://github.com/Lightning-AI/litData>`_ stores items in chunk files (64 MB
here) with an ``index.json``, and streams them from a local folder or object storage (``s3://``,
``gs://``, ``azure://``...), each DDP rank and DataLoader worker reading its own chunks, with a
resumable loader state. Each item is one HQ sub-image and its LQ, raw ``uint8`` (H, W, 3) arrays:
no decoding in the loader (the bytes are what a folder of PNGs holds, about twice as many).

``srlab_shards.json`` beside the index records srlab's own format version and the pair settings
(scale, sub-image size, degradation); :func:`read_meta` reads it from wherever the shards are and
:func:`check_meta` refuses shards another srlab version or patch size cannot use, in one line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from srlab.errors import ConfigError, SRLabError, first_line

FORMAT = 1  # bump when the item layout changes; older shards are then refused, not misread
META = "srlab_shards.json"
CHUNK_BYTES = "64MB"


def _litdata():
    try:
        import litdata
    except ImportError:
        raise SRLabError("streaming shards need the litdata package: pip install 'srlab[data]' "
                         "(or pip install litdata)") from None
    return litdata


def srlab_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("srlab")
    except PackageNotFoundError:
        return "unknown"


def is_remote(input_dir: str) -> bool:
    return "://" in str(input_dir) and not str(input_dir).startswith("local:")


def write_shards(fn: Callable, inputs: list, output_dir: Path, meta: dict, workers: int) -> int:
    """Write the items ``fn`` yields for each input as litdata chunks, then ``srlab_shards.json``; returns the count."""
    litdata = _litdata()
    output_dir = Path(output_dir)
    if (output_dir / "index.json").exists():
        raise SRLabError(f"{output_dir} already holds shards (index.json); choose an empty -o folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    litdata.optimize(fn=fn, inputs=inputs, output_dir=str(output_dir.resolve()), chunk_bytes=CHUNK_BYTES,
                     num_workers=workers, verbose=False, start_method="spawn")
    index = json.loads((output_dir / "index.json").read_text())
    count = sum(int(c["chunk_size"]) for c in index["chunks"])
    (output_dir / META).write_text(json.dumps({"format": FORMAT, "items": count, **meta}, indent=1))
    return count


def _sdk_client_for_plain_http(storage_options: dict | None) -> None:
    """litdata 0.2.76 sends chunk GETs through obstore, which refuses an ``http://`` endpoint (it sets no
    ``allow_http``); for such a server (MinIO or moto without TLS) mark obstore unusable in this process,
    as litdata does itself after a fork, so its boto3 client reads the chunks. Forked workers inherit it."""
    if str((storage_options or {}).get("endpoint_url", "")).startswith("http://"):
        from litdata.streaming import downloader

        if hasattr(downloader, "_OBSTORE_INIT_PID"):
            downloader._OBSTORE_INIT_PID = 0  # "initialised by another process": obstore_usable() is False


def _remote_text(url: str, storage_options: dict) -> str:
    """A small remote file's text. S3 through boto3 with 2 attempts and a 5 s connect timeout, so an
    unreachable server is told in seconds (litdata's own client retries 1000 times); other schemes
    through litdata's downloader."""
    if url.startswith("s3://"):
        import boto3
        from botocore.config import Config

        bucket, key = url[len("s3://"):].split("/", 1)
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        client = boto3.client("s3", config=config, **storage_options)
        return client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    from litdata.streaming.downloader import get_downloader

    with tempfile.TemporaryDirectory(prefix="srlab-shards-") as tmp:
        local = os.path.join(tmp, META)
        get_downloader(url.rsplit("/", 1)[0], tmp, [], storage_options).download_file(url, local)
        return Path(local).read_text()


def read_meta(input_dir: str, storage_options: dict | None = None) -> dict:
    """``srlab_shards.json`` of a local folder or a remote URI litdata reads.

    Raises:
        SRLabError: one line, when the folder or the server cannot be reached or the file is not there.
    """
    where = f"data.input_dir={input_dir}"
    if not is_remote(input_dir):
        folder = Path(str(input_dir).removeprefix("local:")).expanduser()
        if not folder.is_dir():
            raise SRLabError(f"{where} {'is not a folder' if folder.exists() else 'does not exist'}; "
                             "write shards with python -m srlab.prepare IN -o DIR --format litdata")
        path = folder / META
        if not path.is_file():
            raise SRLabError(f"{where}: {META} is missing; these are not shards srlab.prepare --format litdata wrote")
        text = path.read_text()
    else:
        _litdata()
        _sdk_client_for_plain_http(storage_options)
        try:
            text = _remote_text(f"{str(input_dir).rstrip('/')}/{META}", storage_options or {})
        except Exception as exc:  # noqa: BLE001 - botocore, obstore, OS errors: one line for all
            raise SRLabError(f"{where}: cannot read {META} ({type(exc).__name__}: {first_line(exc)}); check the "
                             "URI, the server (data.storage_options.endpoint_url) and the credentials") from None
    try:
        return json.loads(text)
    except ValueError:
        raise SRLabError(f"{where}: {META} is not JSON") from None


def check_meta(meta: dict, input_dir: str, scale: int, patch_size: int, crop: int, paired: bool) -> None:
    """Refuse shards this srlab cannot train on as configured, naming what differs.

    Args:
        meta: :func:`read_meta`'s answer.
        input_dir: where they are (for the message).
        scale: ``data.scale``.
        patch_size: ``data.patch_size``.
        crop: the HQ side a training sample needs (the patch, or more for the degradation's kernels).
        paired: the LQ of the shards is used (``data.degradation=none``).
    """
    where = f"data.input_dir={input_dir}"
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{where}: shards of format {meta.get('format')} (srlab {meta.get('srlab', '?')}); this "
                          f"srlab reads format {FORMAT}: write them again with this version's srlab.prepare")
    if paired and meta.get("scale") != scale:
        raise ConfigError(f"{where}: shards of x{meta.get('scale')} pairs, data.scale={scale}; write them again "
                          "with --scale, or make the LQ on the fly (data.degradation=report|bicubic|realesrgan)")
    size = int(meta.get("subimage_size", 0))
    if size < crop:
        raise ConfigError(f"{where}: shards of {size} px sub-images cannot give data.patch_size={patch_size} "
                          f"({crop} px crops); lower data.patch_size or write them with --subimage-size >= {crop}")


def streaming_dataset(cls: type, input_dir: str, storage_options: dict | None, cache_dir: str | None,
                      seed: int, **kwargs: Any):
    """Build ``cls`` (a ``StreamingDataset`` subclass) shuffled by ``seed``, unreachable data in one line."""
    _litdata()
    _sdk_client_for_plain_http(storage_options)
    try:
        return cls(input_dir=str(input_dir), shuffle=True, drop_last=True, seed=seed, cache_dir=cache_dir,
                   storage_options=storage_options or {}, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise SRLabError(f"data.input_dir={input_dir}: cannot open the shards ({type(exc).__name__}: "
                         f"{first_line(exc)})") from None
