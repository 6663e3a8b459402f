"""One exception tree per package: every exception class the product defines hangs below its
package's base, and a concept the core names (config, usage, serialization) has the core's class."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import couchpotato
import docsweb
import hotpotato
import katopotato
import plugins
from couchpotato import errors as core
from docsweb.errors import DocsWebError
from hotpotato.errors import HotPotatoError
from katopotato import errors as kp
from katopotato.api.errors import ApiError
from plugins.auditing.errors import AuditError
from plugins.sms.errors import SmsError
from plugins.vetting.errors import VettingError

# The base each package's exceptions derive from. katopotato's API answers (ApiError) are the
# HTTP side of the one mapping, their own small tree.
BASES: dict[str, tuple[type[BaseException], ...]] = {
    "couchpotato": (core.CouchPotatoError,),
    "hotpotato": (HotPotatoError,),
    "docsweb": (DocsWebError,),
    "katopotato": (kp.KatoPotatoError, ApiError),
    "plugins.vetting": (VettingError,),
    "plugins.auditing": (AuditError,),
    "plugins.sms": (SmsError,),
}
# A fake Google server for tests and benchmarks (its errors are the fake's HTTP answers), and
# alembic's migration scripts (they run only inside alembic).
NOT_PRODUCT = ("docsweb.testing.", "katopotato.db.migrations.")


def _modules(package: ModuleType) -> list[ModuleType]:
    found = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.startswith(NOT_PRODUCT) or info.name.endswith("__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


def _defined_exceptions() -> list[tuple[str, type[BaseException]]]:
    seen: dict[type[BaseException], str] = {}
    for package in (couchpotato, hotpotato, docsweb, katopotato, plugins):
        for module in _modules(package):
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                    seen.setdefault(obj, module.__name__)
    return sorted(((m, cls) for cls, m in seen.items()), key=lambda p: (p[0], p[1].__name__))


EXCEPTIONS = _defined_exceptions()


def test_the_walk_finds_the_trees() -> None:
    names = {cls.__name__ for _, cls in EXCEPTIONS}
    assert {"CouchPotatoError", "KatoPotatoError", "HotPotatoError", "DocsWebError", "VettingError"} <= names
    assert {"Unresolved", "ApiFailure", "SearchUnavailable", "UsageError"} <= names


@pytest.mark.parametrize(("module", "cls"), EXCEPTIONS, ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_exception_is_in_its_packages_tree(module: str, cls: type[BaseException]) -> None:
    package = next(p for p in BASES if module == p or module.startswith(p + "."))
    assert issubclass(cls, BASES[package]), f"{module}.{cls.__name__} is outside {package}'s tree"
    assert cls.__doc__, f"{module}.{cls.__name__} has no docstring"


def test_one_class_per_concept_the_cores() -> None:
    from hotpotato.errors import SerializationError as SwapSerializationError

    for cls in (kp.SerializationError, SwapSerializationError):
        assert issubclass(cls, core.SerializationError) and issubclass(cls, ValueError)
    assert issubclass(kp.ConfigError, core.ConfigError) and issubclass(kp.ConfigError, kp.KatoPotatoError)
    assert issubclass(kp.UsageError, core.UsageError) and issubclass(kp.UsageError, kp.KatoPotatoError)
    # the only classes of these names are the core's and its subclasses
    for name, base in (("ConfigError", core.ConfigError), ("UsageError", core.UsageError)):
        same = [cls for _, cls in EXCEPTIONS if cls.__name__ == name]
        assert same and all(issubclass(cls, base) for cls in same), same
