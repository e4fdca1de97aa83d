"""One module per object class; each registers itself with `canvasdata.content.registry.register_object`.
Importing this package imports every module in it (those whose names start with "_" are helpers), so
adding a class means adding one module."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
