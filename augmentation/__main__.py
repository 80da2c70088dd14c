"""`python -m augmentation`: see `xval.cli.augment`."""

import sys

from xval.cli.augment import main

if __name__ == "__main__":
    sys.exit(main())
