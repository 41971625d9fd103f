"""The benchmark harness's command line (its measurements are run by hand, never timed in tests)."""

from __future__ import annotations

import time

import torch

from srlab.bench import harness as bench
from srlab.bench import train as bench_train

CPU = torch.device("cpu")


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


def test_stored_weights_are_timed_by_the_infer_section_alone(capsys):
    """A shipped model's name is an infer row, not a net to train; an unknown name says what would do."""
    assert bench.main(["--sections", "train", "--models", "srvgg-x4-bicubic", "--no-write"]) == 2
    assert "stored weights (shipped names, files) are timed by --sections infer alone" in capsys.readouterr().err
    assert bench.main(["--sections", "infer", "--models", "srvgg,nope.pth", "--no-write"]) == 2
    err = capsys.readouterr().err
    assert "--models nope.pth: no such conf/model" in err and "a shipped model (" in err and "srvgg-x4-bicubic" in err


def test_interleave_times_on_the_clock_it_is_given():
    from srlab.bench.utils import interleave

    ticks = iter(range(100))
    times = interleave({"a": lambda: None, "b": lambda: None}, reps=2, device=CPU, warmup=0,
                       clock=lambda: 10.0 * next(ticks))
    assert times == {"a": [10.0, 10.0], "b": [10.0, 10.0]}  # each call reads the fake clock twice


def test_bf16_probe_runs_on_one_thread_and_gives_the_threads_back(monkeypatch):
    from srlab import device

    seen, real = [], torch.nn.Conv2d.forward

    def spy(self, x):
        seen.append((torch.get_num_threads(), x.dtype))
        return real(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    before = torch.get_num_threads()
    assert device.bf16_slowdown(CPU, size=8, reps=1) > 0
    assert {t for t, _ in seen} == {1} and {d for _, d in seen} == {torch.float32, torch.bfloat16}
    assert torch.get_num_threads() == before


def test_infer_runs_every_named_model_with_its_cost(monkeypatch, capsys):
    """--models with --quick: every name gets a row (params, MACs as cards count them, ms/MP, conv ceiling share)."""
    from srlab.bench import infer_nets
    from srlab.infer.efficiency import count_macs

    monkeypatch.setattr(infer_nets, "INPUT", 16)  # a 64x64 output (RLFN needs 15 LR px): the rows, not the timing, are tested
    monkeypatch.setattr(infer_nets, "TILE", 8)
    monkeypatch.setattr(infer_nets, "_backends", lambda gen: ({"torch": gen}, "not run: ONNX export failed (why)"))
    ceiling = {"conv_ceiling_gflops": 10.0}
    rows = infer_nets.run(CPU, ceiling, quick=True, models=("srvgg", "span", "rlfn"))
    assert [(r["model"], r["backend"]) for r in rows][:2] == [("srvgg", "torch"), ("srvgg", "onnxruntime")]
    assert rows[1]["skipped"] == "not run: ONNX export failed (why)"  # a net ONNX cannot express: said, not fatal
    lines = infer_nets.table(rows)
    rows = [r for r in rows if "skipped" not in r]
    assert [r["model"] for r in rows] == ["srvgg", "span", "rlfn"]
    srvgg = rows[0]
    assert srvgg["macs_256_g"] * 1e9 == count_macs(infer_nets._generator("srvgg"))[0] and srvgg["params_m"] > 1
    assert srvgg["ms_per_mp"] == srvgg["s"] * 1e3 / (64 * 64 / 1e6)
    assert srvgg["fraction_of_conv_ceiling"] == srvgg["gflops"] / 10.0
    assert "| model | net | params M | GMACs (256² LR) | backend | s (min-max) | ms/MP | GFLOP/s | of conv ceiling |" \
        in lines and any(line.startswith("| rlfn | RLFN | 0.54 | 33.9 | torch |") for line in lines)
    assert "| srvgg | SRVGGNetCompact | 1.21 | | onnxruntime | | | | not run: ONNX export failed (why) |" in lines


def test_infer_times_a_shipped_model_at_its_own_scale(monkeypatch):
    """--models srvgg-x2-bicubic: the trained weights through upscale's door, ms/MP of its x2 output."""
    from srlab.bench import infer_nets

    monkeypatch.setattr(infer_nets, "INPUT", 16)
    monkeypatch.setattr(infer_nets, "TILE", 8)
    monkeypatch.setattr(infer_nets, "_backends", lambda gen: ({"torch": gen}, None))
    [row] = infer_nets.run(CPU, None, quick=True, models=("srvgg-x2-bicubic",))
    assert (row["model"], row["net"], round(row["params_m"] * 1e3, 1)) == ("srvgg-x2-bicubic", "SRVGGNetCompact", 78.6)
    assert row["ms_per_mp"] == row["s"] * 1e3 / (32 * 32 / 1e6)  # 16 px in, 32 out
