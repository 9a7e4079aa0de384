"""
Wire protocols, each a thin adapter over uploads.engine.

An adapter reads a request, checks its parameters and turns it into engine
calls ("find or start this upload", "these bytes at this offset"); it never
writes a byte or touches the Upload's bookkeeping itself.
"""
