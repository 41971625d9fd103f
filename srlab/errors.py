"""Errors that srlab reports to the user as one line instead of a traceback, the CLI wrapper that does it, and the
argparse type of the commands' whole-number options that have a lower bound."""

from __future__ import annotations

import argparse
import functools
import io
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_USER_ERROR = 2  # what every srlab command exits with on a bad config or input (argparse's usage code)


class SRLabError(Exception):
    """A user-facing problem (bad input, bad config, unsafe file) with a one-line message."""


class ConfigError(SRLabError):
    """An invalid configuration value; the message names the key."""


def report_bad_input(item: object, reason: str, write: Callable[[str], None] | None = None) -> None:
    """Tell the user one input is skipped, the same way in every command: ``error: <item>: <reason>`` on stderr.

    Args:
        item: the file or argument.
        reason: why it is skipped (a sentence fragment, no trailing period).
        write: where a progress bar wants the line (``tqdm.write``-like); default: stderr.
    """
    line = f"error: {item}: {reason}"
    if write is not None:
        write(line)
    else:
        print(line, file=sys.stderr)


def first_line(exc: BaseException, limit: int | None = 200) -> str:
    """What a foreign exception says, for a one-line error: its message's first line (its type's name when
    the message is empty), at most ``limit`` characters."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: the option's whole number if it is >= ``minimum``, else a usage error (exit 2).

    argparse names the option: ``argument --crop: must be >= 1, got 0``; text that is no integer gets its
    usual ``invalid int value: 'x'``.
    """

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # the type's name in argparse's "invalid int value" message
    return parse


def user_errors(fn: Callable | None = None, *, hydra_task: bool = False) -> Callable:
    """Wrap a CLI entry point: an :class:`SRLabError` becomes one ``error: <message>`` line and exit status 2.

    Argparse entry points (``main(argv) -> int``) return 2 for ``sys.exit(main())``. Hydra task
    functions (``hydra_task=True``) exit, since Hydra drops what they return; inside a sweep the
    line starts with the job's number and overrides, so the failing job can be found and rerun.

    Args:
        fn: the entry point.
        hydra_task: ``fn`` runs under ``@hydra.main``.
    """
    if fn is None:
        return functools.partial(user_errors, hydra_task=hydra_task)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SRLabError as exc:
            message = f"error: {_job_prefix() if hydra_task else ''}{exc}"
            if hydra_task:  # also into the run's log file, beside everything else the run wrote
                _log_to_files(fn.__module__, message)
            print(message, file=sys.stderr)
            if hydra_task:
                sys.exit(EXIT_USER_ERROR)
            return EXIT_USER_ERROR
        except BrokenPipeError:  # the reader went away (``--list-models | head``): stop quietly
            _silence_stdout()
            if hydra_task:
                sys.exit(1)
            return 1

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit-time flush cannot raise the broken pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is not a file (captured by a test)
        pass


def _log_to_files(name: str, message: str) -> None:
    """Log ``message`` as an error to the log files only: the terminal gets it once, from ``print``.

    Hydra's job logging sends every record to the console and to ``<run>/<job>.log``; logging it
    the usual way printed the error twice, once with a timestamp.
    """
    logger = logging.getLogger(name)
    record = logger.makeRecord(name, logging.ERROR, "", 0, message, None, None)
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if isinstance(handler, logging.FileHandler) and record.levelno >= handler.level:
                handler.handle(record)
        node = node.parent if node.propagate else None


def _job_prefix() -> str:
    """``job N (overrides): `` inside a Hydra multirun, else empty."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return ""
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    return f"job {OmegaConf.select(hc, 'job.num', default='?')} ({' '.join(hc.overrides.task)}): "
