"""``python -m acme_core ...``; see :mod:`acme_core.cli`."""

import sys

from .cli import main

sys.exit(main())
