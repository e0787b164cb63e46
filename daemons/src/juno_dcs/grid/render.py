"""Config files of a grid, rendered from the templates in etc/templates/ with string.Template."""

from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path

from juno_dcs.errors import ConfigError


def render(template: Path, values: dict[str, object]) -> str:
    """Fill `${name}` placeholders; a placeholder without a value is an error naming both."""
    try:
        return string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise ConfigError(f"{template}: no value for placeholder ${{{exc.args[0]}}}") from exc
    except ValueError as exc:
        raise ConfigError(f"{template}: {exc}") from exc
    except FileNotFoundError as exc:
        raise ConfigError(f"{template}: template missing") from exc


def write_if_changed(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write `text` atomically unless the file already holds it; True when written. The mode is set either way."""
    if path.exists() and path.read_text() == text:
        if path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)
    return True


def digest(*texts: str) -> str:
    """A short fingerprint of config texts, put into the programs' environment so that the supervisor
    restarts exactly the programs whose configuration changed."""
    sha = hashlib.sha256()
    for text in texts:
        sha.update(text.encode())
    return sha.hexdigest()[:12]
