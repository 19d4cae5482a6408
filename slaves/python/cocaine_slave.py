"""Runs a Python app as a slave of the engine.

The engine starts `/usr/bin/python3 cocaine_slave.py` in the app's unpacked
package, which holds manifest.json, with the protocol's environment
(docs/protocol.md).
"""

import sys

from cocaine.worker import main

if __name__ == "__main__":
    sys.exit(main())
