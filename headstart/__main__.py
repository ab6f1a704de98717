"""``python -m headstart``: the command line of headstart/cli.py."""

import sys

from headstart.cli import main

if __name__ == "__main__":
    sys.exit(main())
