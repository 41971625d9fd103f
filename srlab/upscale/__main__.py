"""``python -m srlab.upscale``."""

import sys

from srlab.upscale.cli import main

sys.exit(main())
