"""The benchmark harness's command line (its measurements are run by hand, never timed in tests)."""

from __future__ import annotations

from srlab.bench import harness as bench
from srlab.bench import train as bench_train


def test_set_overrides_reach_the_train_section_and_its_table():
    args = bench.parse_args(["--sections", "train", "--set", "model.channels_last=true",
                             "--set", "trainer.precision=16-mixed"])
    assert args.set == ["model.channels_last=true", "trainer.precision=16-mixed"]
    lines = bench_train.table({"patch": 128, "rows": [], "overrides": args.set})
    assert "Overrides on every model: `model.channels_last=true` `trainer.precision=16-mixed`." in lines


def test_unknown_lever_is_a_one_line_error_before_any_measurement(capsys):
    assert bench.main(["--sections", "levers", "--levers", "baseline,infer:nchw,warp_drive", "--no-write"]) == 2
    err = capsys.readouterr().err
    assert "--levers: unknown warp_drive" in err and "cl_bf16" in err


def test_unknown_model_is_rejected(capsys):
    assert bench.main(["--sections", "train", "--models", "esrgan,nope", "--no-write"]) == 2
    assert "no such conf/model" in capsys.readouterr().err
