"""The daemon's web UI: the partition grid, the run page and their live updates.

Rendered on the server, every value escaped; one small script of our own
(``static/app.js``) keeps the pages current from ``GET /events``.
"""
