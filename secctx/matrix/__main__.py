"""python -m secctx.matrix: see secctx.matrix.commands."""
import sys

from .commands import main

sys.exit(main())
