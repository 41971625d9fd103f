"""The one wrapper every CLI uses: a user error is one ``error:`` line and exit status 2."""

from __future__ import annotations

import logging

import pytest

from srlab.errors import EXIT_USER_ERROR, ConfigError, user_errors
from tests.conftest import compose_config


def _fails(message: str):  # noqa: ANN202
    def entry(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConfigError(message)

    return entry


def test_argparse_entry_points_return_2_with_one_line(capsys):
    assert user_errors(_fails("data.scale=0 must be a positive integer"))() == EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == "error: data.scale=0 must be a positive integer\n"
    assert user_errors(lambda: 0)() == 0  # no error, the entry point's own return value


def test_hydra_tasks_exit_and_name_the_sweep_job(tmp_path, capsys, caplog):
    task = user_errors(_fails("model: cannot build X"), hydra_task=True)
    compose_config(tmp_path, ["model=quickstart", "seed=3"])  # a single run
    with pytest.raises(SystemExit) as info, caplog.at_level(logging.ERROR):
        task()
    assert info.value.code == 2 and capsys.readouterr().err == "error: model: cannot build X\n"
    assert "error: model: cannot build X" in caplog.text  # the run's log file gets it too
    compose_config(tmp_path, ["model=quickstart", "seed=3", "hydra.mode=MULTIRUN", "hydra.job.num=3"])
    with pytest.raises(SystemExit):
        task()
    assert capsys.readouterr().err == "error: job 3 (model=quickstart seed=3): model: cannot build X\n"


def test_other_exceptions_are_not_swallowed():
    def bug():  # noqa: ANN202
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):
        user_errors(bug)()
