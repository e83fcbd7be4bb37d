"""The shell every CLI shares: run its action, report an error as one stderr line and an exit
status, print the result as JSON (``--json``) or for a person."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .errors import EXIT_FAILURE, EXIT_OK, CliError


def run_reporting(action: Callable[[], int], stderr: IO[str], *, interrupted: str) -> int:
    """Run a CLI's ``action`` and turn its errors into one stderr line and an exit status.

    Every error is printed as ``error: <Code>: <message>``: a :class:`CliError` with its own code
    and exit status (2 for :class:`Refused`; its ``detail``, e.g. a PEM, on the lines after), an
    AWS ``ClientError`` with the service's code, other botocore errors and ``OSError`` with their class
    name (exit 1). Ctrl-C prints
    ``error: Interrupted: <interrupted>`` and exits 130.

    Returns:
        ``action``'s exit status, or the error's.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action()
    except CliError as exc:
        print(f"error: {exc.code}: {exc.message}", file=stderr)
        if exc.detail:
            print(exc.detail.rstrip("\n"), file=stderr)
        return exc.exit_code
    except (ClientError, BotoCoreError) as exc:
        code, message = explain_aws_error(exc)
        print(f"error: {code}: {message}", file=stderr)
        return EXIT_FAILURE
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {type(exc).__name__}: {exc.strerror or exc}{where}", file=stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"error: Interrupted: {interrupted}", file=stderr)
        return 130


def explain_aws_error(exc: Exception, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(code, message)`` of a botocore error, with the next step for the common set-up mistakes.

    - ``NoCredentialsError``: configure credentials, or export the sandbox's line.
    - ``EndpointConnectionError``: names the endpoint, ``AWS_ENDPOINT_URL`` and ``./dev.sh sandbox``.
    - CloudFormation ``ValidationError`` "Stack ... does not exist": names the region and how to set it
      (the region is in the message when the adapter added it, see ``aws.stack_outputs``).

    Anything else: the service's code and message (``ClientError``), or the class name and text.
    """
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    env = os.environ if environ is None else environ
    if isinstance(exc, NoCredentialsError):
        return "NoCredentialsError", (
            "no AWS credentials found: configure them (aws configure, aws sso login, AWS_PROFILE or --profile), "
            "or for the local sandbox export the line './dev.sh sandbox' prints "
            "(AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)"
        )
    if isinstance(exc, EndpointConnectionError):
        endpoint = exc.kwargs.get("endpoint_url", "the endpoint")
        configured = env.get("AWS_ENDPOINT_URL")
        where = (
            f"AWS_ENDPOINT_URL is {configured}: start the sandbox there (./dev.sh sandbox) or unset it to use AWS"
            if configured
            else "check the network and --region; for the local sandbox start ./dev.sh sandbox and export its "
            "AWS_ENDPOINT_URL"
        )
        return "EndpointConnectionError", f"cannot connect to {endpoint}; {where}"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "ClientError")), str(err.get("Message") or exc)
        return code, message
    return type(exc).__name__, str(exc)


@dataclass(frozen=True)
class Outcome:
    """What a CLI's action produced.

    Attributes:
        info: the ``--json`` summary.
        show: prints the human-readable summary instead.
    """

    info: Mapping[str, Any]
    show: Callable[[], None]


def run_cli(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    action: Callable[[argparse.Namespace], Outcome],
    *,
    interrupted: str,
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    """Parse ``argv``, run ``action`` through :func:`run_reporting`, then print its outcome.

    On success the summary goes to ``stdout``: as indented JSON with ``--json``, else through
    :attr:`Outcome.show`. Argparse usage errors exit 2 (``SystemExit``) before anything runs.

    Returns:
        0 done, else the error's exit status (see :func:`run_reporting`).
    """
    args = parser.parse_args(argv)
    done: list[Outcome] = []

    def run() -> int:
        done.append(action(args))
        return EXIT_OK

    code = run_reporting(run, stderr, interrupted=interrupted)
    if not done:
        return code
    if args.json:
        json.dump(done[0].info, stdout, indent=2)
        stdout.write("\n")
    else:
        done[0].show()
    return EXIT_OK
