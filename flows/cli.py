"""The ``wxens`` command line: one sub-command per module in :mod:`flows.commands`.

Exit codes: 0 success, 2 bad input or store (a :class:`~pipeline.errors.WxensError`,
or a write the machine refuses: a full disk, a read-only file system, a permission;
printed without a traceback), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM: stopped as
on Ctrl-C, :mod:`pipeline.signals`), 141 stdout closed early (``| head``: the
rest of the output is dropped quietly, as a tool stopped by SIGPIPE); anything else is a
bug. Progress bars are drawn only when stderr is a terminal (``--no-progress``: never).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import difflib
import errno
import gc
import logging
import os
import re
import select
import sys

from tqdm.contrib.logging import logging_redirect_tqdm

from flows.commands import COMMANDS
from flows.commands.options import path_arguments
from pipeline.errors import WxensError
from pipeline.extensions import load_extensions
from pipeline.signals import (
    one_of_several,
    sigterm_raises,
    stop_words,
    stopped_before_a_command,
)
from pipeline.software import wxens_version

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
"""Where Prefect logs the exception that failed a flow or task run."""
RUN_TRACEBACKS_ENV = "WXENS_RUN_TRACEBACKS"
"""Set to 1 to keep Prefect's tracebacks of a flow run failed by a wxens error (a bad
input, a missing store); ``wxens -v`` sets it while its command runs, so that the flow
runs of ``wxens -v serve`` (each a subprocess, which inherits the environment but not the
CLI's log filters) keep them too."""
WXENS_LOGGERS = ("flows", "pipeline", "generators", "verification")
"""The loggers ``-v`` sets to DEBUG; the libraries' stay at INFO (at DEBUG they logged
dozens of lines a command: codecs registered, keys opened, locks taken)."""
STDOUT_CLOSED = 141
"""Exit code when the reader of stdout has gone: 128 + SIGPIPE, as a shell reports a tool
that SIGPIPE stopped."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that takes a word starting with ``-`` and a digit for a value,
    not an option: ``--keep -1d``, ``--lead -6h`` reach the command's own check ("is
    negative") where argparse said "expected one argument" (it knew only ``-1`` and ``-1.5``
    as negative numbers). No wxens option starts with a digit. It takes no abbreviation of
    an option (``--member 5`` was ``--members 5``, and an option added later could change
    what an old abbreviation in a script meant): an unknown option is refused naming the
    option it may stand for (:func:`did_you_mean`). Sub-parsers are of this class too."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but an unknown argument is refused by the command's parser, with
        its usage and name (``wxens info: error: unrecognized arguments: --bogus``), as
        each of its other errors; argparse left it to the top parser, ``wxens: error``."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            subs = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
            command = getattr(parsed, "command", None)
            parser = subs[0].choices.get(command, self) if subs else self
            hint = did_you_mean(parser, extra)
            parser.error(f"unrecognized arguments: {' '.join(extra)}{f' ({hint})' * bool(hint)}")
        return parsed

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._given = list(sys.argv[1:] if args is None else args)  # for error's hint
        return super().parse_known_args(args, namespace)

    def error(self, message: str):  # type: ignore[override]
        """As argparse's, but another error of a command's arguments (a required option
        missing) also names the unknown options given, and what each may stand for:
        ``--stor s.zarr`` said only that ``--store`` is required."""
        given = getattr(self, "_given", [])
        given = given[: given.index("--")] if "--" in given else given
        known = self._option_string_actions
        unknown = [w for w in given if w.startswith("--") and w.split("=", 1)[0] not in known]
        subs = any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if unknown and not subs and not message.startswith("unrecognized arguments"):
            hint = did_you_mean(self, unknown)
            message += f" (unrecognized arguments: {' '.join(unknown)}{f'; {hint}' * bool(hint)})"
        super().error(message)


def did_you_mean(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """``did you mean --members?``: for each unknown option of ``extra``, the options of
    ``parser`` (those its --help shows) it is the start of, else the closest in spelling;
    "" where none is near."""
    shown = sorted(
        s
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        for s in a.option_strings
        if s.startswith("--")
    )
    words = [w.split("=", 1)[0] for w in extra if w.startswith("--")]
    said = []
    for word in words:
        near = [s for s in shown if s.startswith(word)] or difflib.get_close_matches(word, shown, 1)
        if near:
            said.append(" or ".join(near) + (f" for {word}" if len(words) > 1 else ""))
    return f"did you mean {', '.join(said)}?" if said else ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wxens",
        description="Weather ensembles: ingest, train, forecast, verify, orchestrate.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging of wxens (libraries log at INFO)",
    )
    parser.add_argument("--version", action="version", version=f"wxens {wxens_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        path_arguments(p)
        p.set_defaults(run=command.run, kept=getattr(command, "kept", None))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command of ``argv`` and return its exit code (see the module docstring)."""
    atexit.unregister(_no_collection_at_exit)  # once, whatever the calls in one process
    atexit.register(_no_collection_at_exit)
    try:
        try:
            code = _dispatch(argv)
        except SystemExit:  # --help and usage errors: their output is flushed here too
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # now, not at exit, so that a reader gone is seen below
    except BrokenPipeError:
        if not stdout_closed():  # another pipe (a subprocess, a socket): a bug to show
            raise
        # Python's recipe: stdout to devnull, so the flush at exit finds nothing to fail on
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return STDOUT_CLOSED
    return code


def _no_collection_at_exit() -> None:
    """Keep the interpreter's last garbage collections off the objects alive at exit
    (:func:`gc.freeze`): they walked the whole heap of torch, Prefect, xarray and dask,
    several times, to free memory the process gives back anyway: 2 s after the summary of
    ``wxens run`` before its exit. The atexit handlers (Prefect's server stop, dask's
    close, the log handlers' flush) still run; objects freed by reference count still are.
    """
    gc.freeze()


def _dispatch(argv: list[str] | None) -> int:
    """Parse ``argv``, run its command, and map a :class:`WxensError` or an interrupt to
    its exit code and a line on stderr. The extensions installed as packages load first
    (:mod:`pipeline.extensions`: a failed one logs a warning), before the parser."""
    logging.basicConfig(level=logging.INFO, format=log_format())
    try:
        with sigterm_raises():  # an extension's import may be slow: stopped in one line too
            load_extensions()
    except KeyboardInterrupt as interrupt:  # Ctrl-C or SIGTERM: nothing ran, nothing kept
        return stopped_before_a_command(interrupt)
    args = build_parser().parse_args(argv)
    for name in WXENS_LOGGERS if args.verbose else ():
        logging.getLogger(name).setLevel(logging.DEBUG)  # not numcodecs', zarr's, filelock's
    if getattr(args, "no_progress", True) is False and not terminal(sys.stderr):
        args.no_progress = True  # a log file or a pipe: each redraw would be a line in it
    once = OneRecordPerWxensError()
    for logger in map(logging.getLogger, RUN_LOGGERS):
        if not args.verbose and args.command != "serve":  # a server's runs each log theirs
            logger.filters.insert(0, once)  # first: it reads the exception
        for quiet in (without_wxens_traceback, without_interrupt_crash):  # -v keeps; undone
            (logger.removeFilter if args.verbose else logger.addFilter)(quiet)
    tracebacks = os.environ.get(RUN_TRACEBACKS_ENV)
    if args.verbose:  # the import of flows.pipelines, and served runs, keep them too
        os.environ[RUN_TRACEBACKS_ENV] = "1"
    try:
        with sigterm_raises(), _records_between_bars():
            return int(args.run(args) or 0)
    except WxensError as err:
        if not err.silent:
            _say(f"wxens {args.command}: error: {err}")
        return err.exit_code
    except OSError as err:
        if not environment_error(err):
            raise
        _say(f"wxens {args.command}: error: {err}; {ENVIRONMENT_FIXES[err.errno]}")
        return WxensError.exit_code
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (Terminated)
        return _stopped(args, interrupt)
    except Exception as err:
        if (interrupt := interrupt_behind(err)) is None:
            raise
        return _stopped(args, interrupt)
    finally:
        for name in RUN_LOGGERS:
            logging.getLogger(name).removeFilter(once)
        if tracebacks is None:
            os.environ.pop(RUN_TRACEBACKS_ENV, None)
        else:
            os.environ[RUN_TRACEBACKS_ENV] = tracebacks


def interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM that ``error`` was raised in handling (along its causes and
    contexts), or None: a library's clean-up that fails on the way out is the interrupt's
    consequence, not a failure of its own. Prefect's task engine, interrupted while it
    created a task run, raised "ValueError: Task run is not set" in handling the
    KeyboardInterrupt: ``wxens run`` ended in its traceback, exit 1, not in its line."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _stopped(args: argparse.Namespace, interrupt: KeyboardInterrupt) -> int:
    """:func:`_interrupted` in the words and exit code of ``interrupt``'s signal."""
    return _interrupted(args, *stop_words(interrupt))


def _interrupted(args: argparse.Namespace, what: str, code: int) -> int:
    """Say that the command was stopped (``what``), in its last line (Prefect's "Stopping
    temporary server" record at exit is left out: :func:`flows.settings.without_server_stop`).
    Before it, a command with a ``kept(args)`` says what it kept and how to go on (rank 0 alone of
    a torchrun launch; None: nothing to say here): the writes are whole commits, and the
    same command resumes, but the user was told neither."""
    main_rank = os.environ.get("RANK", "0") in ("", "0")
    try:
        said = args.kept(args) if args.kept is not None and main_rank else None
    except (Exception, KeyboardInterrupt) as err:  # a second Ctrl-C, a store it cannot read
        said = None  # the command's line still comes, without what it kept
        logging.getLogger(__name__).debug("what the command kept is unknown: %r", err)
    if said:
        logging.getLogger(args.run.__module__).warning("interrupted: %s", said)
    _say(f"wxens {args.command}: {what}")
    return code


def log_format(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """The console's log format: in a process of a torchrun launch of several, each line
    names its rank (``INFO [rank 1] generators.rollout: ...``), where the processes' lines
    ran together, the same line once per rank with nothing to tell them apart."""
    rank = environ.get("RANK") if one_of_several(environ) else None
    return f"%(levelname)s {f'[rank {rank}] ' if rank else ''}%(name)s: %(message)s"


def _say(line: str) -> None:
    """``line`` on stderr in one write: the processes of a torchrun launch share it, and
    ``print`` writes the text and its newline apart, so two ranks' errors ran together."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


ENVIRONMENT_FIXES = {
    errno.ENOSPC: "the disk is full: free space there, or write somewhere else",
    errno.EDQUOT: "the disk quota is used up: free space there, or write somewhere else",
    errno.EFBIG: "the file is larger than that file system allows: write somewhere else",
    errno.EROFS: "that file system is read-only: write somewhere else",
    errno.EACCES: "permission denied: write somewhere you may, or change the permissions",
    errno.EPERM: "not permitted: write somewhere you may, or change the permissions",
    errno.ENAMETOOLONG: "the path is too long: give a shorter one",
}
"""``errno`` values of a machine that refuses a write (not a wxens bug), and the fix: the
CLI prints these as one line and exits 2, as a bad input."""


def environment_error(error: BaseException) -> bool:
    """Whether ``error`` is an ``OSError`` of :data:`ENVIRONMENT_FIXES`: the disk, the
    file system or a permission refused, not a bug of wxens."""
    return isinstance(error, OSError) and error.errno in ENVIRONMENT_FIXES


def without_wxens_traceback(record: logging.LogRecord) -> bool:
    """Log filter: drop the traceback from a record of a :class:`WxensError` or an
    :func:`environment_error` (Prefect logs a failed flow or task run with one; the CLI
    prints the error's message last, and ``-v`` keeps the traceback). Every record
    passes."""
    if record.exc_info and (
        isinstance(record.exc_info[1], WxensError) or environment_error(record.exc_info[1])
    ):
        record.exc_info = record.exc_text = None
    return True


INTERRUPT_CRASH = re.compile(r"Execution was aborted by (an interrupt|a termination) signal")
"""Prefect's message of a run that Ctrl-C or SIGTERM stopped (its state "Crashed")."""


def without_interrupt_crash(record: logging.LogRecord) -> bool:
    """Log filter: drop Prefect's records of a run that an interrupt stopped ("Crash
    detected! Execution was aborted by an interrupt signal." and "Finished in state
    Crashed(...)"): the task's, each subflow's and the flow's came as six lines before the
    CLI's one. The runs are still recorded Crashed, and ``-v`` keeps the records."""
    return not INTERRUPT_CRASH.search(record.getMessage())


class OneRecordPerWxensError(logging.Filter):
    """Log filter: of Prefect's records of a run that a :class:`WxensError` failed, keep the
    first "Encountered exception" one. A task in a subflow in a flow logged the error five
    times (the task's, each flow's exception and each one's failed state) before the CLI
    printed it; ``-v`` keeps them all, and so does ``wxens serve``, whose runs each fail
    on their own."""

    FAILED_STATE = re.compile(r"encountered an exception:? (\w+):")

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, WxensError):
            seen, self.seen = str(error) in self.seen, self.seen | {str(error)}
            return not seen
        failed = self.FAILED_STATE.search(record.getMessage())
        return not (failed and failed.group(1) in _names(WxensError))


def _names(cls: type) -> set[str]:
    """The names of ``cls`` and of its subclasses, at any depth."""
    return {cls.__name__}.union(*(_names(sub) for sub in cls.__subclasses__()))


def _records_between_bars() -> contextlib.AbstractContextManager[object]:
    """While a command runs, the root logger's console handler writes through tqdm: a record
    clears a progress bar, takes its own line, and the bar is redrawn below it. Nothing
    where the root logs to no console (tests, a host application's own handlers): tqdm
    would add one, and every record would be printed once more, unformatted."""
    console = any(
        isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr)
        for h in logging.getLogger().handlers
    )
    return logging_redirect_tqdm() if console else contextlib.nullcontext()


def terminal(stream: object) -> bool:
    """Whether ``stream`` is a terminal: progress bars are drawn only there, as for ``wxens
    run`` and ``wxens demo`` (in a file or a pipe every redraw stays, control characters
    and all)."""
    try:
        return stream.isatty()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``poll`` reports an error on it);
    False where that cannot be told (no file descriptor, no ``poll``)."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, OSError, ValueError):
        return False
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


if __name__ == "__main__":
    sys.exit(main())
