"""The top-level API: every advertised name resolves, lazily, to the object its module defines."""

import importlib

import disenttalk_fast


def test_every_public_name_resolves():
    for name in disenttalk_fast.__all__:
        obj = getattr(disenttalk_fast, name)
        if name in disenttalk_fast._LAZY:
            assert obj is getattr(importlib.import_module(disenttalk_fast._LAZY[name]), name)


def test_unknown_name_is_an_attribute_error():
    try:
        disenttalk_fast.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
