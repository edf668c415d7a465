"""`python -m exporter.simulator`: run the simulator standalone."""

import sys

from exporter.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
