"""A stateful local emulator of the part of Twilio's REST API that nudge uses.

Import what tests, the demo and benchmarks need from here::

    from sandbox.twilio import EmulatorConfig, EmulatorServer, create_app, run_emulator

See ``server.py`` for running it, ``app.py`` for its routes and ``config.py`` for its knobs.
"""

from sandbox.twilio.app import EmulatorApp, create_app
from sandbox.twilio.config import EmulatorConfig
from sandbox.twilio.server import EmulatorServer, run_emulator, serve

__all__ = ["EmulatorApp", "EmulatorConfig", "EmulatorServer", "create_app", "run_emulator", "serve"]
