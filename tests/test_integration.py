"""The stpipe entry point lists exactly the package's Steps and Pipelines."""

import importlib
import inspect
import pkgutil
from importlib.metadata import entry_points

from stpipe import Pipeline, Step

import jwst_soss_custom
from jwst_soss_custom.integration import get_steps


def _classes_in_package():
    found = {}
    for info in pkgutil.walk_packages(jwst_soss_custom.__path__, "jwst_soss_custom."):
        if ".datasets" in info.name:
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, Step)
                and obj.__module__.startswith("jwst_soss_custom")
                and getattr(obj, "class_alias", None)
            ):
                found[obj.class_alias] = obj
    return found


def test_get_steps_matches_classes():
    listed = {alias: (path, is_pipeline) for path, alias, is_pipeline in get_steps()}
    classes = _classes_in_package()
    assert set(listed) == set(classes)
    for alias, cls in classes.items():
        path, is_pipeline = listed[alias]
        module, name = path.rsplit(".", 1)
        assert getattr(importlib.import_module(module), name) is cls
        assert is_pipeline == issubclass(cls, Pipeline)
        assert alias.startswith("soss_")


def test_entry_point_is_registered():
    eps = entry_points(group="stpipe.steps")
    assert any(ep.value == "jwst_soss_custom.integration:get_steps" for ep in eps)


def test_aliases_do_not_clash_with_jwst():
    from jwst.stpipe.integration import get_steps as jwst_steps

    ours = {alias for _, alias, _ in get_steps()}
    assert not ours & {alias for _, alias, _ in jwst_steps()}
