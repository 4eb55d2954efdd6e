"""``python -m nudge``: the same as the ``nudge`` command."""

from nudge.cli.main import main

main()
