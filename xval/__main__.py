"""`python -m xval`: see `xval.cli.main`."""

from xval.cli.main import main
from xval.core.entry import exit_process

if __name__ == "__main__":
    exit_process(main())
