"""`python -m exporter` runs the command line."""

import sys

from exporter.cli.main import main

sys.exit(main())
