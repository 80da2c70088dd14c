"""`python -m xval`: see `xval.cli.main`."""

import sys

from xval.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
