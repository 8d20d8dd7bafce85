"""``branchline-mobile``: the HTTPS gateway customers' phones open from a terminal's QR.

It serves a small mobile web app and a JSON API (described at ``/openapi.json``) and talks
gRPC to the server's Mobile API with its own service certificate (the ``mobile`` role). It
holds no state another instance needs: the phone's session token rides in its cookie, the
CSRF token is derived from it, and rate limits are per instance.
"""
