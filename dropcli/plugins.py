"""Plugins: installed packages that add datasets or models by name, through the entry point group
`dropcli.plugins` (declared in the plugin's pyproject.toml):

    [project.entry-points."dropcli.plugins"]
    digits = "my_package.dropcli_plugin"          # a module: importing it registers (register_dataset ...)
    nets = "my_package.plugin:register"           # or a function, called with no arguments

They are loaded once, the first time a config names a dataset or model that is not built in (or an error
lists the names there are), so a run with built-in names never imports them.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging

GROUP = "dropcli.plugins"
log = logging.getLogger("dropcli")


class PluginError(Exception):
    """An installed plugin could not be loaded."""


@functools.cache
def load_plugins() -> tuple[str, ...]:
    """Import (or call) every entry point of the group once; the names of those loaded."""
    loaded = []
    for entry in importlib.metadata.entry_points(group=GROUP):
        try:
            target = entry.load()
            if callable(target):
                target()
        except Exception as error:  # any failure of someone else's code: one line that names the plugin
            last = str(error).strip().splitlines()[-1:] or [""]
            raise PluginError(f"plugin {entry.name!r} ({entry.value}, entry point group {GROUP}) failed to "
                              f"load: {type(error).__name__}: {last[0][:300]}") from None
        loaded.append(entry.name)
    return tuple(loaded)
