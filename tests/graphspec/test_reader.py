"""The one YAML reader (:mod:`graphspec.reader`): typed getters, defaults, bounds, did-you-mean, YAML-1.1
number strings, and one located error line ``FILE:LINE:COL: ...`` naming the key."""

from __future__ import annotations

import pytest

from graphspec import ConfigError, SpecError
from graphspec.reader import FloatRange, IntRange, Reader, as_number, bounds_text, key_text
from graphspec.yaml_loader import loads_yaml

TEXT = """\
name: demo
count: 3
ratio: 1e-3
big: 2e9
flag: true
mode: fast
modes: [fast, slow]
range: {low: 1, high: 4}
span: {low: 0.5, high: 2.5}
section:
  known: 1
empty:
"""


def reader(text: str = TEXT, error: type[ConfigError] = ConfigError) -> Reader:
    return Reader(loads_yaml(text, "conf.yaml"), error)


def failure(call, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_typed_getters_read_values():
    r = reader()
    assert r.string(("name",)) == "demo"
    assert r.integer(("count",), low=1, high=3) == 3
    assert r.boolean(("flag",)) is True
    assert r.choice(("mode",), ("fast", "slow")) == "fast"
    assert r.choices(("modes",), ("fast", "slow")) == ("fast", "slow")
    assert r.int_range(("range",), 0, 8) == IntRange(1, 4)
    assert r.float_range(("span",), low=0) == FloatRange(0.5, 2.5) and 1.0 in FloatRange(0.5, 2.5)
    assert r.mapping(("section",), {"known": True, "other": False}) == {"known": 1}


def test_yaml_1_1_exponent_strings_are_numbers():
    r = reader()
    assert r.get(("ratio",)) == "1e-3"  # what PyYAML gives
    assert r.number(("ratio",), low=0, low_open=True) == pytest.approx(1e-3)
    assert r.number(("big",)) == 2e9
    assert as_number("nan") == "nan" and as_number("fast") == "fast" and as_number(3) == 3


def test_defaults_apply_to_missing_and_null_values_only():
    r = reader()
    assert r.integer(("nope",), low=1, default=7) == 7
    assert r.number(("empty",), default=None) is None
    assert r.choice(("nope",), ("a", "b"), default="a") == "a"
    assert r.string(("nope",), default="x") == "x"
    assert r.boolean(("nope",), default=False) is False
    assert r.mapping(("nope",), {"a": False}, optional=True) == {}
    error = failure(r.integer, ("nope",))
    assert "`nope` must be an integer, got None" in str(error)


@pytest.mark.parametrize(
    "call, args, kwargs, at, words",
    [
        ("integer", (("count",),), {"low": 4}, (2, 1), "`count` must be >= 4, got 3"),
        ("integer", (("count",),), {"high": 2}, (2, 1), "`count` must be <= 2, got 3"),
        ("integer", (("count",),), {"low": 0, "high": 2}, (2, 1), "`count` must be in [0, 2], got 3"),
        ("integer", (("name",),), {}, (1, 1), "`name` must be an integer, got 'demo'"),
        ("integer", (("flag",),), {}, (5, 1), "`flag` must be an integer, got True"),
        ("number", (("ratio",),), {"low": 1}, (3, 1), "`ratio` must be >= 1, got 0.001"),
        ("number", (("count",),), {"low": 0, "high": 3, "high_open": True}, (2, 1), "must be in [0, 3), got 3"),
        ("number", (("name",),), {}, (1, 1), "`name` must be a number, got 'demo'"),
        ("boolean", (("count",),), {}, (2, 1), "`count` must be true or false, got 3"),
        ("string", (("count",),), {}, (2, 1), "`count` must be a non-empty string, got 3"),
        ("choice", (("mode",), ("fest", "slow")), {}, (6, 1), "`mode`: unknown value 'fast'; did you mean 'fest'?"),
        ("choice", (("mode",), ("slow",)), {"what": "speed"}, (6, 1), "unknown speed 'fast' (valid: slow)"),
        ("choices", (("modes",), ("fast",)), {}, (7, 15), "`modes.1`: unknown value 'slow' (valid: fast)"),
        ("int_range", (("range",), 2), {}, (8, 9), "`range.low` must be >= 2, got 1"),
        ("int_range", (("span",),), {}, (9, 8), "`span.low` must be an integer, got 0.5"),
        ("mapping", (("section",), {"knwn": True}), {}, (11, 3), "unknown key 'known' in `section`; did you mean"),
        ("mapping", (("section",), {"known": True, "need": True}), {}, (10, 1), "missing required key 'need'"),
        ("mapping", (("name",), {"a": True}), {}, (1, 1), "`name` must be a mapping with keys a, got 'demo'"),
    ],
)
def test_errors_are_one_located_line_naming_the_key(call, args, kwargs, at, words):
    error = failure(getattr(reader(), call), *args, **kwargs)
    assert str(error).startswith(f"conf.yaml:{at[0]}:{at[1]}: "), str(error)
    assert words in str(error), str(error)
    assert (error.location.line, error.location.column) == at
    assert not isinstance(error, SpecError)


def test_error_carries_the_key_and_the_reason():
    error = failure(reader().integer, ("range", "high"), high=3)
    assert error.key == "range.high" and error.reason == "`range.high` must be <= 3, got 4"
    assert error.location.file == "conf.yaml"


def test_swapped_range_points_at_low():
    error = failure(reader("r: {low: 5, high: 1}\n").int_range, ("r",))
    assert str(error) == "conf.yaml:1:5: `r`: low 5 is greater than high 1; swap them"


def test_a_value_listed_twice_is_refused():
    error = failure(reader("m: [a, b, a]\n").choices, ("m",), ("a", "b"))
    assert str(error) == "conf.yaml:1:11: `m`: 'a' is listed twice"


def test_reader_raises_the_error_type_it_was_made_with():
    with pytest.raises(SpecError) as info:
        reader(error=SpecError).integer(("name",))
    assert str(info.value).startswith("conf.yaml:1:1: `name` must be an integer")


def test_free_mapping_needs_string_keys():
    assert reader("args: {a: 1}\n").mapping(("args",), None) == {"a": 1}
    error = failure(reader("args: {1: 2}\n").mapping, ("args",), None)
    assert "`args`: keys must be strings, got 1" in str(error)


def test_yaml_problems_of_any_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"conf.yaml:1:1: the file is empty; it must hold a table"):
        loads_yaml("", "conf.yaml", holds="a table")
    with pytest.raises(ConfigError, match=r"missing.yaml: file not found") as info:
        from graphspec.yaml_loader import load_yaml

        load_yaml(tmp_path / "missing.yaml")
    assert not isinstance(info.value, SpecError)


def test_bounds_and_key_text():
    assert bounds_text(0, None, low_open=True) == "positive"
    assert bounds_text(0, 1, low_open=True) == "in (0, 1]"
    assert bounds_text(None, 5, high_open=True) == "< 5"
    assert bounds_text(None, None) is None
    assert key_text(("a", 0, "b")) == "`a.0.b`" and key_text(()) == "the file"
