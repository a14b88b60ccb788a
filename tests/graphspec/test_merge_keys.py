"""YAML merge keys (``<<: *anchor``) where a caller allows them (:func:`graphspec.yaml_loader.loads_yaml` with
``merge_keys=True``): the merged values, where each is said to be written, and the refusals."""

from __future__ import annotations

import pytest

from graphspec import ConfigError
from graphspec.yaml_loader import loads_yaml

TEXT = """\
base: &base {lr: 0.1, steps: 5, on: yes}
one: {<<: *base, lr: 0.2}
two:
  steps: 9
  <<: [*base, {extra: 1, lr: 0.3}]
"""


def test_own_entries_win_then_the_merged_ones_in_order():
    data = loads_yaml(TEXT, "r.yaml", merge_keys=True).data
    assert data["one"] == {"lr": 0.2, "steps": 5, True: True}
    assert data["two"] == {"steps": 9, "lr": 0.1, True: True, "extra": 1}


def _at(text: str) -> tuple[int, int]:
    """The line and column of ``text``'s first occurrence in :data:`TEXT`."""
    start = TEXT.index(text)
    return TEXT.count("\n", 0, start) + 1, start - TEXT.rfind("\n", 0, start)


@pytest.mark.parametrize(
    ("path", "written"),
    [
        (("one", "lr"), "lr: 0.2"),  # its own entry
        (("one", "steps"), "steps: 5"),  # merged: where the anchored mapping writes it
        (("two", "steps"), "steps: 9"),  # its own, although the merge key comes after it
        (("two", "lr"), "lr: 0.1"),  # the first merged mapping wins over the second
        (("two", "extra"), "extra: 1"),
    ],
)
def test_a_merged_value_is_located_where_it_is_written(path, written):
    where = loads_yaml(TEXT, "r.yaml", merge_keys=True).where(path)
    assert (where.file, where.line, where.column) == ("r.yaml", *_at(written))


def test_merged_entries_leave_no_scratch_paths_and_keep_their_boolean_words():
    loaded = loads_yaml(TEXT, "r.yaml", merge_keys=True)
    assert not [p for p in [*loaded.marks, *loaded.bool_words] if "<merge>" in p]
    assert loaded.bool_word(("one", True)) == "yes" and loaded.bool_word(("one", True), key=True) == "on"


def test_merge_keys_are_refused_unless_allowed():
    with pytest.raises(ConfigError, match=r"^r\.yaml:2:6: mapping keys must be plain scalars \(no merge keys `<<`\)$"):
        loads_yaml(TEXT, "r.yaml")


@pytest.mark.parametrize("value", ["3", "[1, 2]", "[*base, 4]"])
def test_a_merge_of_no_mapping_is_refused_where_it_is_written(value):
    text = f"base: &base {{lr: 0.1}}\nbad: {{<<: {value}}}\n"
    with pytest.raises(ConfigError, match=r"^r\.yaml:2:\d+: a merge key `<<` takes a mapping or a list of mappings"):
        loads_yaml(text, "r.yaml", merge_keys=True)


def test_a_mapping_that_merges_itself_is_refused():
    with pytest.raises(ConfigError, match="alias refers to its own anchor"):
        loads_yaml("a: &a {x: 1, <<: *a}\n", "r.yaml", merge_keys=True)
