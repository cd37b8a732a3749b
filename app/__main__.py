"""`python -m app`: the same as the `segassist` command."""

import sys

from app.cli import main

sys.exit(main())
