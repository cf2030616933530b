import pytest

from dropcli.registry import Registry


def test_a_name_registered_twice_is_an_error():
    things = Registry("thing")
    things.register("a")(len)
    with pytest.raises(KeyError, match="registered twice"):
        things.register("a")(len)


def test_an_unknown_name_lists_the_known_ones():
    things = Registry("thing")
    things.register("a")(len)
    things.register("b")(len)
    assert things.lookup("a") is len
    with pytest.raises(KeyError, match="unknown thing 'c'; allowed: a, b"):
        things.lookup("c")
