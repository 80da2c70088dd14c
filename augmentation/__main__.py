"""`python -m augmentation`: see `xval.cli.augment`."""

from xval.cli.augment import main
from xval.core.entry import exit_process

if __name__ == "__main__":
    exit_process(main())
