"""The one wrapper every CLI uses: a user error is one ``error:`` line and exit status 2."""

from __future__ import annotations

import argparse
import io
import logging

import pytest

from srlab.errors import EXIT_USER_ERROR, ConfigError, int_at_least, user_errors
from tests.conftest import compose_config


def _fails(message: str):  # noqa: ANN202
    def entry(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConfigError(message)

    return entry


def test_argparse_entry_points_return_2_with_one_line(capsys):
    assert user_errors(_fails("data.scale=0 must be a positive integer"))() == EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == "error: data.scale=0 must be a positive integer\n"
    assert user_errors(lambda: 0)() == 0  # no error, the entry point's own return value


def test_bounded_whole_number_options_are_usage_errors_naming_the_option(capsys):
    p = argparse.ArgumentParser(prog="cmd")
    p.add_argument("-n", type=int_at_least(1), default=16)
    p.add_argument("--tile", type=int_at_least(0), default=None)
    assert vars(p.parse_args(["-n", "1", "--tile", "0"])) == {"n": 1, "tile": 0}
    assert vars(p.parse_args([])) == {"n": 16, "tile": None}  # defaults are not checked
    for argv, told in (
        (["-n", "0"], "argument -n: must be >= 1, got 0"),
        (["--tile", "-1"], "argument --tile: must be >= 0, got -1"),
        (["-n", "x"], "argument -n: invalid int value: 'x'"),
    ):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(argv)
        assert exc.value.code == EXIT_USER_ERROR
        assert capsys.readouterr().err.splitlines()[-1] == f"cmd: error: {told}"


def test_hydra_tasks_exit_and_name_the_sweep_job(tmp_path, capsys):
    task = user_errors(_fails("model: cannot build X"), hydra_task=True)
    compose_config(tmp_path, ["model=quickstart", "seed=3"])  # a single run
    # Hydra's job logging: every record to the console and to the run's log file
    console, log_file = io.StringIO(), logging.FileHandler(tmp_path / "train.log")
    root = logging.getLogger()
    root.addHandler(logging.StreamHandler(console))
    root.addHandler(log_file)
    with pytest.raises(SystemExit) as info:
        task()
    log_file.close()
    assert info.value.code == 2 and capsys.readouterr().err == "error: model: cannot build X\n"
    assert console.getvalue() == ""  # printed once: not a second time through the console logger
    assert (tmp_path / "train.log").read_text() == "error: model: cannot build X\n"  # the run's log file has it
    compose_config(tmp_path, ["model=quickstart", "seed=3", "hydra.mode=MULTIRUN", "hydra.job.num=3"])
    with pytest.raises(SystemExit):
        task()
    assert capsys.readouterr().err == "error: job 3 (model=quickstart seed=3): model: cannot build X\n"


def test_other_exceptions_are_not_swallowed():
    def bug():  # noqa: ANN202
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):
        user_errors(bug)()


def test_a_closed_pipe_ends_quietly(capsys):
    """``python -m srlab.upscale --list-models | head -1``: no traceback when the reader leaves."""

    @user_errors
    def lists_models() -> int:
        raise BrokenPipeError(32, "Broken pipe")

    assert lists_models() == 1
    assert capsys.readouterr().err == ""
