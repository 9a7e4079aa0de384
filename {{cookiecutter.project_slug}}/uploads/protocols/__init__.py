"""
Wire protocols, each a thin adapter over uploads.engine.

An adapter reads a request, checks its parameters and turns it into engine
calls ("find or start this upload", "write this piece"); it never writes a
byte or touches the Upload's bookkeeping itself. Its answers to the engine's
errors are one table (error_statuses, error_headers; see access.py).
"""
