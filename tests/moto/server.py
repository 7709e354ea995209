"""moto_server with the fixes listed in README.md (beside this file) applied; same arguments."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fixes  # noqa: E402,F401  (applies them)
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
