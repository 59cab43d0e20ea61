"""The third-party data sets the tests read from the shared folder next to the project (``../shared/data``).

They are required, not optional: a test whose data set is missing fails and says
where it looked, rather than skipping and proving nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def require(path: Path) -> Path:
    """``path``, or a failure of the calling test naming the missing file or folder."""
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read the shared data folder next to the project (../shared/data)")
    return path
