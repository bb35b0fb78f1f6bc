"""``python -m flinkey_async``: the ``flinkey`` command line."""

import sys

from .cli import main

sys.exit(main())
