"""When a launch-asset patch is worth offering instead of the full (gzip-compressed) asset: a table."""

from __future__ import annotations

import pytest

from overair.releases.launch_patches import MAX_RATIO, gzip_size, worth_offering

CASES = [
    # patch size, full gzip size, ratio, offered
    (187, 223_389, MAX_RATIO, True),  # a one-line change of a real Metro bundle
    (50, 100, MAX_RATIO, True),  # exactly half: offered
    (51, 100, MAX_RATIO, False),  # just over half: the full asset
    (100, 100, MAX_RATIO, False),
    (150, 100, MAX_RATIO, False),  # unrelated bundles: the patch is bigger than the gzip download
    (0, 100, MAX_RATIO, False),  # no patch at all (nothing was built)
    (0, 0, MAX_RATIO, False),
    (90, 100, 0.9, True),  # the ratio is a parameter of the builder
    (91, 100, 0.9, False),
]


@pytest.mark.parametrize(("patch", "full", "ratio", "offered"), CASES)
def test_a_patch_is_offered_only_when_at_most_the_ratio_of_the_gzip_download(
    patch: int, full: int, ratio: float, offered: bool
) -> None:
    assert worth_offering(patch, full, ratio) is offered


def test_the_full_size_is_the_gzip_download_and_does_not_depend_on_the_time() -> None:
    data = b"console.log('hello');\n" * 1000
    assert gzip_size(data) == gzip_size(data) < len(data) / 10
