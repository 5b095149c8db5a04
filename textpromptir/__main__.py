import sys

from textpromptir.cli import main

if __name__ == "__main__":  # spawned training processes import this module under another name
    sys.exit(main())
