"""``python -m firmware``: see firmware/app/main.py."""

import sys

from firmware.app.main import main

sys.exit(main())
