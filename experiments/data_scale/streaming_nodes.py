"""Streaming shards on two loopback DDP nodes, from a local folder and from a local S3-compatible server.

    python experiments/data_scale/streaming_nodes.py --photos ../shared/datasets/SunHays80 [--work streaming_work]

1. ``srlab.prepare --format litdata`` cuts the first ``--count`` photos into 192 px sub-image pairs (shards);
2. a real S3-compatible HTTP server on 127.0.0.1 (moto's ``ThreadedMotoServer``) gets a copy through boto3;
3. for each source (the folder, ``s3://``), two ``torchrun`` nodes (``--nnodes 2``, one process each,
   gloo over loopback) train a tiny quickstart net with ``data=streaming``:
   - *straight*: one epoch (each rank reads its own half of the shards);
   - *stopped*: the same run stopped after ``--stop-at`` steps (``trainer.max_steps``: last.ckpt mid-epoch);
   - *resumed*: ``ckpt_path=`` that checkpoint, to the end of the epoch;
   and the resumed weights are compared with the straight run's, tensor for tensor.

Writes ``streaming_nodes.md`` beside this file (steps, times, equality, the commands).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from srlab.bench.utils import commit_label  # noqa: E402
from srlab.weights import safe_torch_load  # noqa: E402

TINY = ["model=quickstart", "model.generator.num_feat=8", "model.generator.num_block=1",
        "model.generator.num_grow_ch=4", "~callbacks.curves", "~callbacks.comparison_grid",
        "~callbacks.progress_bar", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2",
        "trainer.max_epochs=1", "trainer.deterministic=true", "data=streaming", "data.batch_size=8",
        "data.patch_size=64", "data.num_workers=1", "callbacks.model_checkpoint_last.every_n_batches=1"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "srlab", "AWS_SECRET_ACCESS_KEY": "srlab-secret", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(work: Path, name: str, overrides: list[str]) -> dict:
    """Both node ranks of one run, started together; returns wall time, exit codes and rank 0's last.ckpt."""
    port, procs, start = free_port(), [], time.monotonic()
    env = {**os.environ, **CREDENTIALS, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for rank in (0, 1):
        cmd = ["torchrun", "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(rank),
               "--master-addr", "127.0.0.1", "--master-port", str(port), "-m", "srlab.train", *TINY, *overrides,
               f"hydra.run.dir={work / name}-node{rank}", f"data.cache_dir={work / 'cache'}-node{rank}"]
        log = open(work / f"{name}-node{rank}.log", "w")
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait(timeout=900) for p in procs]
    last = work / f"{name}-node0" / "checkpoints" / "last.ckpt"
    return {"name": name, "codes": codes, "wall_s": time.monotonic() - start, "last": last,
            "step": safe_torch_load(last)["global_step"] if last.exists() else None}


def same_weights(a: Path, b: Path) -> bool:
    x, y = safe_torch_load(a)["state_dict"], safe_torch_load(b)["state_dict"]
    # equal_nan: a metric's unset buffer (psnr_bicubic without validation crops) is NaN in both
    return x.keys() == y.keys() and all(x[k].shape == y[k].shape and torch.allclose(x[k], y[k], rtol=0, atol=0,
                                                                                     equal_nan=True) for k in x)


def s3_copy(shards: Path) -> tuple[object, list[str]]:
    """A local S3-compatible server holding the shards; returns it and the overrides that reach them."""
    import boto3
    from moto.server import ThreadedMotoServer

    os.environ.update(CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
               "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    client = boto3.client("s3", **options)
    client.create_bucket(Bucket="srlab-shards")
    for f in shards.iterdir():
        client.upload_file(str(f), "srlab-shards", f"x4/{f.name}")
    return server, ["data.input_dir=s3://srlab-shards/x4", *[f"+data.storage_options.{k}={v}" for k, v in options.items()]]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--photos", type=Path, required=True, help="folder of training photos (SunHays80)")
    p.add_argument("--benchmarks", type=Path, default=Path("../shared/datasets"), help="folder holding Set5/")
    p.add_argument("--work", type=Path, default=Path("streaming_work"))
    p.add_argument("--count", type=int, default=12, help="photos to cut into shards")
    p.add_argument("--stop-at", type=int, default=8, help="steps before the stopped run ends")
    args = p.parse_args()
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "photos").mkdir(parents=True)
    for f in sorted(args.photos.iterdir())[: args.count]:
        shutil.copy(f, work / "photos" / f.name)
    shards = work / "shards"
    subprocess.run([sys.executable, "-m", "srlab.prepare", str(work / "photos"), "-o", str(shards), "--format",
                    "litdata", "--subimage-size", "192", "--subimage-step", "192"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    items = json.loads((shards / "srlab_shards.json").read_text())["items"]  # what prepare wrote
    val = [f"data.val_sets=[{{name: Set5, dir: {(args.benchmarks / 'Set5').resolve()}}}]", "monitor=val/Set5/psnr_y"]

    server, s3 = s3_copy(shards)
    rows = []
    try:
        for source, overrides in (("folder", [f"data.input_dir={shards}"]), ("s3", s3)):
            straight = two_nodes(work, f"{source}-straight", [*overrides, *val])
            stopped = two_nodes(work, f"{source}-stopped", [*overrides, *val, f"trainer.max_steps={args.stop_at}"])
            resumed = two_nodes(work, f"{source}-resumed", [*overrides, *val, f"ckpt_path={stopped['last']}"])
            runs = (straight, stopped, resumed)
            equal = all(r["codes"] == [0, 0] for r in runs) and same_weights(straight["last"], resumed["last"])
            rows.append((source, runs, equal))
            print(source, [(r["name"], r["codes"], r["step"], round(r["wall_s"], 1)) for r in runs], "equal:", equal)
    finally:
        server.stop()

    lines = ["# Streaming shards on two loopback DDP nodes (folder and local S3 server)", "",
             f"`python experiments/data_scale/streaming_nodes.py --photos {args.photos}` at commit `{commit_label()}`; "
             f"{args.count} photos -> {items} sub-image pairs of 192 px; batch 8 per rank, one loader worker, "
             "two `torchrun` nodes of one CPU process each (gloo over 127.0.0.1), a tiny quickstart net "
             "(`trainer.deterministic=true`), Set5 validated at the epoch's end.", "",
             f"One epoch is {items} / 8 / 2 = {items // 16} steps when each rank reads its own half "
             f"(one process alone would make {items // 8}).", "",
             "| source | run | exit codes (node 0, 1) | global step of rank 0's last.ckpt | wall s |",
             "|---|---|---|---:|---:|"]
    for source, runs, _ in rows:
        for r in runs:
            lines.append(f"| {source} | {r['name'].split('-', 1)[1]} | {r['codes']} | {r['step']} | {r['wall_s']:.1f} |")
    lines += ["", "Resumed from the stopped run's mid-epoch last.ckpt to the end of the epoch, the weights equal the "
              "straight run's, tensor for tensor:", ""]
    lines += [f"- {source}: **{'equal' if equal else 'NOT equal'}**" for source, _, equal in rows]
    (HERE / "streaming_nodes.md").write_text("\n".join(lines) + "\n")
    print(HERE / "streaming_nodes.md")


if __name__ == "__main__":
    main()
