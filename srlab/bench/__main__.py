"""``python -m srlab.bench``: the benchmark harness (:mod:`srlab.bench.harness`)."""

import sys

from srlab.bench.harness import main

sys.exit(main())
