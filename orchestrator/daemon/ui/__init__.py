"""The daemon's web UI: the partition grid, the run page and their live updates; the
lineage, task graph and charts pages, drawn as SVG on the server.

Rendered on the server, every value escaped; one small script of our own
(``static/app.js``) keeps the pages current from ``GET /events``.
"""
