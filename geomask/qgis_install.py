"""Install the QGIS plugin (the "geomask" Processing provider) into a QGIS profile, or remove it.

The plugin is the package :mod:`geomask.qgis_plugin`, run by QGIS's own Python: it is copied (or
linked) to ``<QGIS home>/profiles/<profile>/python/plugins/geomask_provider``, ``geomask.json``
beside it records the command that runs this geomask, and ``[PythonPlugins] geomask_provider=true``
in the profile's ``QGIS/QGIS3.ini`` enables it (QGIS, the Processing toolbox and ``qgis_process``
load it at their next start).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from geomask import __version__
from geomask.errors import ConfigError, OutputError

__all__ = ["PLUGIN_NAME", "QgisProfile", "geomask_command", "install", "qgis_home", "uninstall"]

PLUGIN_NAME = "geomask_provider"
CONFIG_NAME = "geomask.json"
_SECTION = "[PythonPlugins]"


def qgis_home(path: Path | None = None) -> Path:
    """The folder holding QGIS's ``profiles/``: ``path``, else ``$QGIS_CUSTOM_CONFIG_PATH``, else
    the platform's default (``~/.local/share/QGIS/QGIS3`` on Linux, ``~/Library/Application
    Support/QGIS/QGIS3`` on macOS, ``%APPDATA%\\QGIS\\QGIS3`` on Windows)."""
    if path is not None:
        return path.expanduser()
    custom = os.environ.get("QGIS_CUSTOM_CONFIG_PATH")
    if custom:
        return Path(custom).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "QGIS" / "QGIS3"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "QGIS" / "QGIS3"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "QGIS" / "QGIS3"


@dataclass(frozen=True)
class QgisProfile:
    """A QGIS user profile: ``<home>/profiles/<name>``."""

    home: Path
    name: str = "default"

    @property
    def folder(self) -> Path:
        """The profile's folder."""
        return self.home / "profiles" / self.name

    @property
    def plugin(self) -> Path:
        """Where the plugin goes."""
        return self.folder / "python" / "plugins" / PLUGIN_NAME

    @property
    def settings(self) -> Path:
        """The profile's settings file (QSettings, ini format)."""
        return self.folder / "QGIS" / "QGIS3.ini"


def geomask_command() -> tuple[list[str], dict[str, str]]:
    """The command that runs this geomask, and the environment it needs.

    The interpreter running now with ``-m geomask``; when this geomask was found through
    ``PYTHONPATH`` (a source checkout), that ``PYTHONPATH`` is recorded as well.
    """
    env = {}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return [str(Path(sys.executable).absolute()), "-m", "geomask"], env


def _kernels() -> dict[str, list[str]]:
    from geomask import kernels

    return {name: list(kernels.KERNELS[name].params) for name in kernels.names()}


def install(profile: QgisProfile, *, link: bool = False) -> Path:
    """Put the plugin into ``profile`` (replacing an earlier one), configure and enable it.

    Parameters
    ----------
    profile : QgisProfile
        The QGIS profile; its folders are created when missing (QGIS has not run yet).
    link : bool
        Link the plugin's files to this package's instead of copying them (for development: edits
        show at QGIS's next start). ``geomask.json`` is written in the linked folder then.

    Returns
    -------
    Path
        The plugin folder.

    Raises
    ------
    OutputError
        A folder or file cannot be written.
    """
    source = Path(__file__).with_name("qgis_plugin")
    target = profile.plugin
    command, env = geomask_command()
    config = {"command": command, "env": env, "version": __version__, "kernels": _kernels()}
    try:
        _remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            target.symlink_to(source, target_is_directory=True)
        else:
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        _set_enabled(profile.settings, enabled=True)
    except OSError as e:
        raise OutputError(f"cannot install the QGIS plugin into {target}: {e.strerror or e}") from e
    return target


def uninstall(profile: QgisProfile) -> Path | None:
    """Remove the plugin from ``profile`` and its enabled flag; return the folder removed (None: none).

    Raises
    ------
    OutputError
        The folder cannot be removed.
    """
    target = profile.plugin
    try:
        existed = target.exists() or target.is_symlink()
        if existed and not target.is_symlink() and not (target / "metadata.txt").exists():
            raise ConfigError(f"{target} is not a QGIS plugin folder; remove it yourself if you mean to")
        _remove(target)
        if profile.settings.exists():
            _set_enabled(profile.settings, enabled=None)
    except OSError as e:
        raise OutputError(f"cannot remove the QGIS plugin {target}: {e.strerror or e}") from e
    return target if existed else None


def _remove(target: Path) -> None:
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)


def _set_enabled(settings: Path, *, enabled: bool | None) -> None:
    """Set ``geomask_provider=true|false`` under ``[PythonPlugins]`` (None removes the key).

    The file is edited line by line so every other setting stays as QSettings wrote it.
    """
    lines = settings.read_text(encoding="utf-8").splitlines() if settings.exists() else []
    key = f"{PLUGIN_NAME}="
    out: list[str] = []
    section = None
    placed = enabled is None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if section == _SECTION and not placed:
                end = len(out)
                while end and not out[end - 1].strip():  # before the blank lines ending the section
                    end -= 1
                out.insert(end, f"{key}{str(enabled).lower()}")
                placed = True
            section = stripped
        elif section == _SECTION and stripped.startswith(key):
            if not placed:
                out.append(f"{key}{str(enabled).lower()}")
                placed = True
            continue
        out.append(line)
    if section == _SECTION and not placed:
        out.append(f"{key}{str(enabled).lower()}")
        placed = True
    if not placed:
        if out and out[-1].strip():
            out.append("")
        out += [_SECTION, f"{key}{str(enabled).lower()}"]
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text("\n".join(out) + "\n", encoding="utf-8")
