"""A sweep's seeds given as text ('1-10', as the built-in fgd-paper sweep has them) parse through
the fill's seed parser (this crashed with an ImportError before)."""

import pytest

from gpuinfra.errors import UserError
from gpuinfra.sweep.spec import _parse_seeds


def test_seed_text_parses():
    assert _parse_seeds("1-3") == [1, 2, 3]
    assert _parse_seeds([3, 1]) == [3, 1]
    with pytest.raises(UserError, match="seed 3 listed more than once"):  # was silently one seed fewer
        _parse_seeds([3, 1, 3])


def test_bad_seed_text_names_the_field():
    with pytest.raises(UserError) as e:
        _parse_seeds("1-x")
    assert e.value.where == "seeds"
