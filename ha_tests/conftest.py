"""make test-ha: sensornode's discovery against a real Home Assistant (tools/ha_install.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
