"""make test-ha: sensornode's discovery against a real Home Assistant (tools/ha_install.py)."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# firmware/ imports `micropython` (const): the host tests' stand-in, last so nothing else is hidden.
sys.path.append(os.path.join(ROOT, "host_tests", "stubs"))
