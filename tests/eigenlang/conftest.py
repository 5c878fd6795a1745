from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import workflow_copy


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    return workflow_copy(tmp_path)
