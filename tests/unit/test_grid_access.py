"""Where the service users' files go: reachability by POSIX bits, and the service area of a private home."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from juno_dcs.errors import ConfigError
from juno_dcs.grid import access
from juno_dcs.grid.home import GridHome

STRANGER = access.User("stranger", 54321, frozenset({54321}))


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory others may enter (pytest's own are under a mode-0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="juno-access-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_search_bits_by_owner_group_and_others() -> None:
    owner = access.User("o", 10, frozenset({20}))
    assert access.can_search(0o700, 10, 99, owner)
    assert not access.can_search(0o070, 10, 20, owner)  # the owner's own bits decide, not the group's
    assert access.can_search(0o010, 11, 20, owner)
    assert not access.can_search(0o701, 11, 20, owner)  # a member of the group: the group bits decide
    assert access.can_search(0o001, 11, 21, owner)
    assert access.can_search(0o000, 11, 21, access.User("root", 0, frozenset({0})))


def test_the_first_private_directory_on_the_way_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "inner").mkdir(parents=True)
    tmp_path.chmod(0o755)
    private.chmod(0o700)
    assert access.blocking_directory(private / "inner" / "not-yet" / "home", STRANGER) == private
    private.chmod(0o711)
    assert access.blocking_directory(private / "inner" / "not-yet" / "home", STRANGER) is None


def test_a_home_under_a_private_directory_gets_a_service_area(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    area = tmp_path / "area"
    home = GridHome(private / "grid")
    note = access.settle_service_root(home, area=area)
    assert note is not None
    assert f"cannot pass {private} (drwx------, owner root)" in note
    assert home.service_link.is_symlink()
    assert home.service_root == area / home.tag
    assert home.rse_dir("CNAF_DISK") == area / home.tag / "data" / "rses" / "CNAF_DISK"
    assert (area / home.tag).stat().st_mode & 0o777 == 0o755
    # the choice is remembered: a second `up` keeps it and says nothing
    assert access.settle_service_root(home, area=area) is None
    assert home.service_root == area / home.tag


def test_a_reachable_home_keeps_everything_inside(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    home = GridHome(tmp_path / "grid")
    assert access.settle_service_root(home, area=tmp_path / "area") is None
    assert not home.service_link.exists()
    assert home.service_root == home.root
    assert home.rse_dir("IHEP_DISK") == home.root / "data" / "rses" / "IHEP_DISK"


def test_no_layout_that_works_is_refused_with_the_directory_and_the_user(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)  # the home and the area both under it
    home = GridHome(tmp_path / "grid")
    with pytest.raises(ConfigError) as caught:
        access.settle_service_root(home, area=tmp_path / "area")
    message = str(caught.value)
    assert f"the users xrootd (XRootD), proxy (Squid), www-data (nginx's workers) cannot pass {tmp_path} " \
        "(drwx------, owner root)" in message
    assert "chmod o+x" in message
    assert not home.root.exists()  # nothing was made


def test_a_service_area_made_unreachable_later_is_named(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    area = tmp_path / "area"
    home = GridHome(private / "grid")
    access.settle_service_root(home, area=area)
    area.chmod(0o700)
    with pytest.raises(ConfigError, match=f"the service area {area / home.tag}"):
        access.settle_service_root(home, area=area)


def test_purge_removes_only_an_area_under_the_service_area(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    home = GridHome(private / "grid")
    access.settle_service_root(home, area=elsewhere)
    assert access.remove_service_area(home) == elsewhere / home.tag
    assert (elsewhere / home.tag).is_dir()  # not under /var/lib/juno-dcs: left alone
    assert os.readlink(home.service_link) == str(elsewhere / home.tag)
