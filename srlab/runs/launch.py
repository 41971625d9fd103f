"""Processes started by an outside launcher (torchrun, SLURM's srun): only global rank 0 keeps a run folder.

Under ``torchrun --nnodes N`` or ``srun`` every process runs ``python -m srlab.train`` from the start,
so each would compose the config and make its own Hydra run folder (``.hydra/`` and ``train.log``; two
processes started within the same second even share one and both write into it). Lightning's own
launcher (``trainer.devices=2`` without torchrun) already points its children at rank 0's folder;
it sets ``LOCAL_RANK`` but neither ``RANK`` nor ``SLURM_PROCID``, so it is left alone here.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Mapping


def launcher_rank(env: Mapping[str, str]) -> int:
    """The global rank an outside launcher gave this process (``RANK``, else ``SLURM_PROCID``); 0 without one."""
    value = env.get("RANK", env.get("SLURM_PROCID", "0"))
    return int(value) if str(value).isdigit() else 0


def worker_overrides(env: Mapping[str, str]) -> list[str]:
    """Hydra overrides that keep a non-zero rank's Hydra output out of the user's folders.

    Rank 0 writes the run folder, the checkpoints, the logs and the plots (Lightning saves
    checkpoints and logs only on global rank 0, srlab's callbacks likewise); another rank would only
    add a ``.hydra/`` copy and its own ``train.log`` (and, in a multirun, its own sweep folder and
    summary). Its output folders become a temporary one, removed when the process exits; its log
    lines still go to its console. Appended after the user's overrides, so they win over a
    ``hydra.run.dir`` or ``hydra.sweep.dir`` given on the command line.

    Args:
        env: the process environment (``os.environ``).

    Returns:
        ``[]`` for rank 0 (and without a launcher), else the overrides to append to ``sys.argv``.
    """
    rank = launcher_rank(env)
    if rank == 0:
        return []
    folder = tempfile.mkdtemp(prefix=f"srlab-rank{rank}-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return [f"hydra.run.dir={folder}", f"hydra.sweep.dir={folder}", "hydra.output_subdir=null"]
