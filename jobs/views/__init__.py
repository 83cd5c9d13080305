"""Pages by group; each view parses the request, calls a service or selector, and renders.

Each htmx fragment is a named partial in its page's template (`page.html#partial`).
"""
