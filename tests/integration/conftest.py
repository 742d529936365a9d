"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.helpers import Sites
from tests.iceberg_helpers import IceTable, ice_table


@pytest.fixture
def ice(sites: Sites) -> IceTable:
    """A pyiceberg directory table `db.s.ice` (3 rows) on the primary of `sites`."""
    return ice_table(sites)
