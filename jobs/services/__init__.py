"""User actions, one module per concern; each validates, writes, and nudges the worker.

Views, the admin and management commands call these; nothing here renders or reads a request.
"""
