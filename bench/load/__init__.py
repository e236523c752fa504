"""Load, soak and chaos harness: real servers as subprocesses, driven over HTTP."""
