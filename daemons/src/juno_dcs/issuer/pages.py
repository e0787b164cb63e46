"""The issuer's two HTML pages: the login form and the refusal of a request it will not serve. Jinja escapes every
value (Flask's `render_template_string`); the form posts back to the URL it was served at, so the authorization
request's parameters travel in the query string and nothing is kept between the two requests but the form's
check value, in a cookie of the issuer's own (a login posted from another site is refused: login CSRF)."""

from __future__ import annotations

from flask import render_template_string

WRONG_PASSWORD = "Wrong account name or password."  # noqa: S105 (a message, not a password)
STALE_FORM = "This form has expired or was not sent from this page: log in again."


def too_many(wait_s: int) -> str:
    return f"Too many failed logins for this account or from this address: try again in {wait_s} s."


_STYLE = """<style>body{font-family:sans-serif;max-width:28em;margin:4em auto}label,input,button{display:block;
width:100%;margin:.3em 0}input{padding:.4em}button{padding:.5em}.error{color:#a00;font-weight:bold}</style>"""

_LOGIN = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>JUNO DCS: log in</title>""" + _STYLE + """</head><body>
<h1>JUNO DCS token issuer</h1>
<p>Log in for <b>{{ client_id }}</b> with your Rucio account and its password.</p>
{% if error %}<p class="error" id="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" id="login">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="account">Rucio account</label>
<input id="account" name="account" autocomplete="username" required value="{{ account }}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="submit">Log in</button>
</form></body></html>"""

_REFUSED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>JUNO DCS: request refused</title>""" + _STYLE + """</head><body>
<h1>JUNO DCS token issuer</h1>
<p class="error" id="error" role="alert">This login request is refused ({{ error }}): {{ description }}</p>
</body></html>"""


def login_form(client_id: str, error: str, csrf: str, account: str = "") -> str:
    """The form; `csrf` goes into a hidden field, and the caller sets the same value as the form's cookie."""
    return render_template_string(_LOGIN, client_id=client_id, error=error, account=account, csrf=csrf)


def refused(error: str, description: str) -> str:
    return render_template_string(_REFUSED, error=error, description=description)
