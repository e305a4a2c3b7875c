"""The ``tether`` command: ``tether demo`` and ``tether emulate``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]

USAGE = """\
tether demo      run a bot against the embedded Discord emulator, with faults, live
tether emulate   run the Discord emulator for any bot (REST + gateway on 127.0.0.1)

Run `tether demo --help` or `tether emulate --help` for their options.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tether`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="tether",
        description="tether: Discord's real-time APIs, reliably.",
        usage="tether {demo,emulate} [options]",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("demo", "emulate"))
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "demo":
        from tether.demo import main as demo_main

        return demo_main(rest)
    if command == "emulate":
        from tether.emulator.cli import main as emulate_main

        return emulate_main(rest)
    parser.parse_args(args[:1])
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
