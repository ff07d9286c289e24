"""Start the GenARM dashboard: ``python app.py`` (built-in demo models) or ``python app.py --models FILE``."""

import sys

from app.server import main

if __name__ == "__main__":
    sys.exit(main())
