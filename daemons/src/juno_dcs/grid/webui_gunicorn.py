"""gunicorn settings of the WebUI (`gunicorn -c python:juno_dcs.grid.webui_gunicorn`): its access log names paths
without their query, since `/auth/oidc_code?code=...&state=...` ends every OIDC login. A module rather than a
command-line option: the supervisor would expand the format's `%(...)s` in a program's command."""

from __future__ import annotations

access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s" %(s)s %(b)s "%(a)s"'
