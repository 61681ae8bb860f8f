"""The gateway's own web pages: the user page at ``/``, the operations page at ``/ops``, and
the admin JSON/SSE endpoints behind the latter (``/api/v1/admin/...``).

Static files (HTML, JS, CSS, sample images) live in ``static/`` next to these modules; the
routes are listed in ``gateway/web_routes.py``.
"""
