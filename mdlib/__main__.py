import sys

from mdlib.cli import main

sys.exit(main())
