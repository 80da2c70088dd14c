"""`python -m preprocessing`: see `xval.cli.preprocess`."""

from xval.cli.preprocess import main
from xval.core.entry import exit_process

if __name__ == "__main__":
    exit_process(main())
