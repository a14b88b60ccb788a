"""Fixtures of the search tests.

(No ``__init__.py`` here on purpose: it would make this folder a package named ``search`` that shadows the
real one. Test modules import shared names from ``search_helpers``, not from this file.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from search_helpers import BUILTIN_SPACES, variant_text

from search.space import SearchSpace, builtin_space, load_search_space


@pytest.fixture
def write_space(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_space(file_name, text)``: write a search-space file under ``tmp_path`` and return its path."""

    def write(file_name: str, text: str) -> Path:
        path = tmp_path / file_name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def spaces() -> dict[str, SearchSpace]:
    """The built-in spaces, loaded once."""
    return {name: load_search_space(builtin_space(name)) for name in BUILTIN_SPACES}


@pytest.fixture(scope="session")
def fast_spaces(spaces: dict[str, SearchSpace], tmp_path_factory: pytest.TempPathFactory) -> dict[str, SearchSpace]:
    """The built-in spaces, with compound's budget checked on the feature network (analytic, fast)
    instead of the whole detector (a meta-device build per sample)."""
    text = variant_text("compound", "  scope: detector ", "  scope: feature_network ")
    path = tmp_path_factory.mktemp("spaces") / "compound_fast.yaml"
    path.write_text(text, encoding="utf-8")
    return spaces | {"compound": load_search_space(path)}
