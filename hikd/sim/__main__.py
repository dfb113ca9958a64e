"""`python -m hikd.sim ...`: the same as `hikd sim ...`."""

import sys

from hikd.sim.cli import main

sys.exit(main(sys.argv[1:]))
