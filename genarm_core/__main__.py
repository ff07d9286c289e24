import sys

from genarm_core.cli.main import main

sys.exit(main())
