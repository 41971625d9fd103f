"""Nothing srlab loads can run code; checked in the source and at the training entry points.

evaluate, upscale, export and inference have their own code-running-pickle tests
(tests/test_evaluate.py, upscale/test_cli.py, test_export.py, infer/test_generator.py::test_unsafe_pickle_refused,
tests/weights/); upscale's output-path containment is tests/upscale/test_cli.py::
test_names_cannot_escape_and_inputs_never_overwritten and test_symlink_in_output_is_replaced_not_followed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
import pytest

from srlab.errors import SRLabError
from srlab.train import build_model, run
from tests.conftest import TINY_NETS, compose_config
from tests.infer.test_generator import save_evil

SRC = Path(__file__).resolve().parents[1] / "srlab"
QUICK = ["model=quickstart", "debug=smoke", *TINY_NETS["quickstart"]]


def _code_lines(pattern: str) -> list[str]:
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line.split("#")[0]):
                hits.append(f"{path.relative_to(SRC.parent)}:{n}: {line.strip()}")
    return hits


def test_no_code_path_can_unpickle_code():
    # every torch.load goes through srlab.weights.files.safe_torch_load (weights_only=True)
    assert [h for h in _code_lines(r"\btorch\.load\(") if not h.startswith("srlab/weights/files.py:")] == []
    assert _code_lines(r"weights_only\s*=\s*False") == []
    assert _code_lines(r"\b(pickle|cloudpickle|dill|joblib)\.loads?\(|allow_pickle\s*=\s*True") == []
    assert _code_lines(r"load_from_checkpoint") == []  # Lightning's loader takes weights_only from the caller
    hub = _code_lines(r"load_state_dict_from_url\(")
    assert hub and all("weights_only=True" in h for h in hub)
    assert _code_lines(r"weights_only\s*=\s*True") != []  # the checks above look at real code


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    save_evil(path, marker)
    return path, marker


def test_train_ckpt_path_refuses_a_code_running_checkpoint(tmp_path, evil):
    path, marker = evil
    with pytest.raises(SRLabError, match=r"evil.ckpt: refused to load") as info:
        run(compose_config(tmp_path / "run", [*QUICK, f"ckpt_path={path}"]))
    assert "\n" not in str(info.value) and not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_generator_init_refuses_a_code_running_file(tmp_path, evil):
    path, marker = evil
    with pytest.raises(SRLabError, match=r"^model.generator_init: .*evil.ckpt: refused to load") as info:
        run(compose_config(tmp_path / "run", [*QUICK, f"+model.generator_init={path}"]))
    assert "\n" not in str(info.value) and not marker.exists()


def test_lightning_itself_loads_resume_checkpoints_weights_only(tmp_path, evil):
    """Even past srlab's own check, trainer.fit(ckpt_path=...) as train.run calls it never unpickles code."""
    import pickle

    path, marker = evil
    cfg = compose_config(tmp_path / "run", QUICK)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False, callbacks=[])
    with pytest.raises(pickle.UnpicklingError):
        trainer.fit(build_model(cfg), datamodule=hydra.utils.instantiate(cfg.data, _convert_="all"),
                    ckpt_path=str(path), weights_only=True)
    assert not marker.exists()


def test_train_cli_one_line_for_an_unsafe_checkpoint(tmp_path, evil, monkeypatch, capsys):
    from srlab.train import main

    path, marker = evil
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["srlab.train", *QUICK, f"ckpt_path={path}", "hydra.run.dir=run"])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "refused to load" in err[0]
    assert not marker.exists()
