"""The `llmflow` console script. Importing the CLI takes a moment: Ctrl-C in it is one line and
exit code 130, like Ctrl-C anywhere else, not a traceback."""

import sys


def main() -> None:
    try:
        from .commands import main as run_cli
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    run_cli()
