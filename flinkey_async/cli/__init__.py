"""The ``flinkey`` command line (also ``python -m flinkey_async``), built on Typer and Rich.

``flinkey sandbox``           run the local flinkey API emulator until Ctrl-C
``flinkey demo``              a guided tour of the SDK against an in-process sandbox
``flinkey assignments ...``   get, list, create, update and delete assignments
``flinkey customers list``    the customers the API manager may act for
``flinkey cars ...``          and one group per other resource of the client

One command per resource method, declared in :data:`flinkey_async.cli._resources.GROUPS`
and built from the method's signature. The reference (options, environment variables, exit
codes, output formats) is ``docs/cli.md``.

Modules: :mod:`._app` (the Typer app and :func:`~._app.run`, which maps every outcome to an
exit code), :mod:`._resources` (the resource commands), :mod:`._connection` (credentials,
``--sandbox``, ``--debug``), :mod:`._output` (JSON, CSV, Rich tables and progress),
:mod:`._parsing` (option values), :mod:`._sandbox` (``flinkey sandbox``), :mod:`._errors`
(exit codes and one-line messages), :mod:`._docs` (the generated part of ``docs/cli.md``).

This module imports neither Typer nor Rich: :func:`main` does, and reports a missing ``cli``
extra in one line (exit status 3) instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

#: Exit status of a configuration problem (see ``flinkey_async.cli._errors.ExitCode``).
_CONFIGURATION = 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flinkey`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status: 0 ok, 1 API or operation failure, 2 usage, 3 configuration, 4 timeout, 130
    interrupted."""
    try:
        from ._app import run
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if not missing or missing == "flinkey_async":
            raise
        print(
            f"flinkey: the command line needs the 'cli' extra (module {missing!r} is not "
            "installed): pip install 'flinkey_async[cli]'",
            file=sys.stderr,
        )
        return _CONFIGURATION
    except KeyboardInterrupt:
        print("flinkey: interrupted", file=sys.stderr)
        return 130
    return run(argv)
