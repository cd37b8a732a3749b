"""`python -m training` (also under `torchrun ... -m training`): the `segassist-train` command line."""

import sys

from training.cli import main

sys.exit(main())
