"""``python -m sandbox.twilio``: the emulator in a process of its own.

This is what ``EmulatorServer(mode="subprocess")`` starts.

Prints one JSON line, ``{"base_url": ..., "port": ...}``, once the socket listens, then serves
until SIGINT or SIGTERM. ``nudge sandbox twilio`` is the friendlier front door.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from sandbox.twilio.config import EmulatorConfig
from sandbox.twilio.server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.twilio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", type=Path, default=None, help="SQLite state file")
    parser.add_argument("--config-json", default="{}", help="EmulatorConfig as JSON")
    args = parser.parse_args(argv)
    config = EmulatorConfig.model_validate_json(args.config_json)

    def announce(base_url: str) -> None:
        port = int(base_url.rsplit(":", 1)[1])
        sys.stdout.write(json.dumps({"base_url": base_url, "port": port}) + "\n")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        serve(config, host=args.host, port=args.port, state_path=args.state, on_ready=announce)


if __name__ == "__main__":
    main()
