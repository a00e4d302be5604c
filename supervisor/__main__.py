"""``python -m supervisor`` is ``mmclaude run``."""

import sys

from supervisor.cli import main

sys.exit(main(["run", *sys.argv[1:]]))
