"""The web interface for researchers and archivists, served by ``listwatch serve`` beside the archive API.

- ``jsonapi``: JSON for sources, programmes, versions, events and subscriptions (``/api/…``);
- ``pages``: server-rendered pages (Jinja2 templates in ``templates/``, CSS and a little JS in ``static/``,
  no build step, nothing from a CDN): sources, programmes, a programme, changes, captures, replay, charts;
- ``auth``: reading (token, sign-in, signed links, or open) and changing (token, or sign-in + CSRF);
- ``data``: the catalog queries both of them show; ``charts``: SVG charts drawn on the server;
- ``diffs``: changed words marked; ``evidence``: a WACZ of one programme's captures.

The package itself imports nothing: ``scheduler.web.signing`` is used by every alert message and by crawl
subprocesses, which must not pay for FastAPI. ``mount.mount_web`` puts the whole interface on an app.
"""
