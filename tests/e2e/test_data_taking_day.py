"""A data-taking day, as the raw-data team tells it: SPADE writes the day's files to IHEP_DISK and announces each
on Kafka; the ingestor registers them into the day's block and puts the share's rules on it; HTTP third-party
copies take them to CNAF and JINR (and to IN2P3 on its days), then to the tapes. At the end every file is at
every site of the share with the checksum SPADE announced, read back from each destination."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Grid
from tests.e2e.shell import Shell, adler32, downloaded, replicas
from tests.e2e.stories import DataTakingDay

pytestmark = [pytest.mark.grid, pytest.mark.e2e]


# about 120 copies of 100 kB (disks, then tapes once the block closes): 2 to 3 minutes on an idle 2-core machine,
# waited for up to 15 minutes because Rucio's judge may pause a busy block for 1 to 10 minutes
@pytest.mark.timeout(1200)
def test_a_data_taking_day_reaches_every_site_of_the_share_file_by_file(grid: Grid, data_taking_day: DataTakingDay,
                                                                         tmp_path: Path) -> None:
    day = data_taking_day
    assert day.report["delivered"] == day.report["files_written"] == day.files, day.report
    assert day.report["blocks"] == sorted(day.blocks), day.report
    assert len(day.announced) == day.files  # one announcement per file, read back from spade.files
    assert {m["rse"] for m in day.announced.values()} == {"IHEP_DISK"}

    per_block = len(day.announced) // 2
    for block in day.wait():  # `juno-dcs raw status`: closed, every rule of the share OK for every file
        expected = day.blocks[block["name"]]
        assert (block["files"], block["bytes"]) == (per_block, per_block * 100_000), block
        held = {rse: n for site in block["sites"].values() for rse, n in site["rses"].items()}
        assert held == dict.fromkeys(expected, per_block), (block["name"], held)  # IN2P3 on its day only

    # file by file, with the stock rucio CLI as a user: where each file is, and its bytes read back from every
    # storage element that holds it, against what SPADE announced
    reader = Shell(grid, "alice", tmp_path)
    for block, expected in day.blocks.items():
        date = block.split(".")[1]
        names = sorted(n for n in day.announced if n.split(".")[4] == date)
        assert len(names) == per_block
        found = replicas(reader, f"raw:{block}")
        assert sorted(found) == names
        for name in names:
            assert found[name]["adler32"] == day.announced[name]["adler32"], name
            assert sorted(found[name]["rses"]) == sorted(expected), (name, found[name]["rses"])
        for rse in expected:
            where = tmp_path / rse / date
            reader.run("rucio", "download", "--rses", rse, "--dir", str(where), f"raw:{block}")
            got = downloaded(where)
            assert sorted(got) == names, rse
            for name, path in got.items():
                announced = day.announced[name]
                assert (path.stat().st_size, adler32(path)) == (announced["size"], announced["adler32"]), (rse, name)
