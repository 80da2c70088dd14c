"""`python -m preprocessing`: see `xval.cli.preprocess`."""

import sys

from xval.cli.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
