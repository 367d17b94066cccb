"""The ``catembed`` command line: thin commands over the library."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from typing import Any, TextIO

import click

from catembed._cli_data import dataset, kinds, train_command
from catembed._cli_models import GATE_EXIT_CODE, encode, evaluate, similarity, validate
from catembed._cli_serve import serve
from catembed.errors import CatembedError

__all__ = ["GATE_EXIT_CODE", "main"]


class _Terminated(BaseException):
    """SIGTERM arrived: raised so that half-written outputs are cleaned up as on Ctrl-C (a
    BaseException, as KeyboardInterrupt is, so no ``except Exception`` swallows it)."""


class _TerminatedError(click.ClickException):
    exit_code = 128 + signal.SIGTERM


class _UsageError(click.UsageError):
    """A usage error in one line, with where to find help: click's own prints the command's
    usage and a hint on lines of their own above the message."""

    def show(self, file: Any = None) -> None:
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


def _one_line(error: click.UsageError) -> _UsageError:
    return _UsageError(error.format_message(), error.ctx)  # exit code 2, as click's


class _Group(click.Group):
    """Turns every CatembedError into a one-line message and exit code 1, and usage errors
    into one line with exit code 2; Ctrl-C and SIGTERM stop a command as an error would,
    removing what it had half written."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:  # an option of catembed itself
            raise _one_line(error) from None

    def invoke(self, ctx: click.Context) -> Any:
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # an unknown command, option or bad value
            _end_holding(show=False)
            raise _one_line(error) from None
        except CatembedError as error:
            _end_holding(show=False)
            raise click.ClickException(str(error)) from None
        except click.ClickException:
            _end_holding(show=False)
            raise
        except KeyboardInterrupt:
            _end_holding(show=False)  # a stopped command's warnings are as moot as a failed one's
            raise click.ClickException("interrupted") from None
        except _Terminated:
            _end_holding(show=False)
            raise _TerminatedError("terminated") from None
        finally:
            _end_holding(show=True)  # unless dropped above
            if main_thread:  # signal handlers can only be set there
                signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@click.group(cls=_Group)
@click.version_option(package_name="catembed")
@click.option("-q", "--quiet", is_flag=True, help="Only print results and errors.")
def main(quiet: bool) -> None:
    """Train small embedding models that know what belongs in a categorical column,
    and use them to catch the values that don't."""
    # A server runs until stopped: its warnings cannot wait for the end.
    _setup_logging(quiet, hold=click.get_current_context().invoked_subcommand != "serve")


class _HoldingHandler(logging.StreamHandler[TextIO]):
    """Writes to standard error, holding warnings back until the command logs progress or
    ends: one that fails on bad input, or is stopped (Ctrl-C, SIGTERM), then shows its one-line
    error alone, not a warning about that input first."""

    def __init__(self, hold: bool) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.held: list[logging.LogRecord] | None = [] if hold else None

    def emit(self, record: logging.LogRecord) -> None:
        if self.held is not None and record.levelno >= logging.WARNING:
            self.held.append(record)
            return
        self.end_holding(show=True)
        super().emit(record)

    def end_holding(self, show: bool) -> None:
        """Write the warnings held (``show``) or drop them; later ones are written at once."""
        self.acquire()  # emit holds it already; the command's end does not
        try:
            held, self.held = self.held or [], None
            for record in held if show else ():
                super().emit(record)
        finally:
            self.release()


def _end_holding(show: bool) -> None:
    for handler in logging.getLogger("catembed").handlers:
        if isinstance(handler, _HoldingHandler):
            handler.end_holding(show)


def _setup_logging(quiet: bool, hold: bool = False) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    handler = _HoldingHandler(hold)
    logger = logging.getLogger("catembed")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for noisy in ("transformers", "sentence_transformers", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    else:  # read when transformers is imported: a command that needs none skips its import
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


for _command in (dataset, kinds, train_command, evaluate, validate, encode, similarity, serve):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
