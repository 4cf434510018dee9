"""Safe archive handling: what a hostile or sloppy zip must not be able to do."""

from __future__ import annotations

import zipfile

import pytest

from geoportal.sample.formats import Cp950ZipInfo, write_zip
from ingest.archive import Limits, extract
from ingest.errors import SourceRefused


def _zip(path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def test_cp950_names_are_decoded_and_mac_junk_skipped(tmp_path):
    src = tmp_path / "a.zip"
    write_zip(
        src,
        [("資料/道路.txt", b"x"), ("__MACOSX/資料/._道路.txt", b"junk"), (".DS_Store", b"junk")],
        cp950_names=True,
    )
    with zipfile.ZipFile(src) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800
    out = extract(src, tmp_path / "out")
    assert (tmp_path / "out" / "資料" / "道路.txt").read_bytes() == b"x"
    assert out.decoded_names == "cp950"
    assert sorted(out.skipped) == [".DS_Store", "__MACOSX/資料/._道路.txt"]
    assert not (tmp_path / "out" / "__MACOSX").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt"])
def test_entries_cannot_escape_the_folder(tmp_path, name):
    src = tmp_path / "bad.zip"
    _zip(src, {name: b"pwned"})
    with pytest.raises(SourceRefused, match="outside the archive") as e:
        extract(src, tmp_path / "out", display="bad.zip")
    assert e.value.reason == "zip-path-escape"
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entries_are_refused(tmp_path):
    src = tmp_path / "link.zip"
    with zipfile.ZipFile(src, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SourceRefused, match="symbolic link"):
        extract(src, tmp_path / "out")


def test_zip_bomb_is_refused_before_it_fills_the_disk(tmp_path):
    src = tmp_path / "bomb.zip"
    _zip(src, {"zeros.dbf": b"\0" * 50_000_000})
    with pytest.raises(SourceRefused, match="zip bomb") as e:
        extract(src, tmp_path / "out")
    assert e.value.reason == "zip-bomb"
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == 0


def test_total_size_and_nesting_limits(tmp_path):
    inner = tmp_path / "inner.zip"
    _zip(inner, {"a.csv": b"x,y\n1,2\n" * 1000})
    outer = tmp_path / "outer.zip"
    _zip(outer, {"inner.zip": inner.read_bytes()})
    out = extract(outer, tmp_path / "ok")
    assert (out.root / "inner" / "a.csv").is_file()
    with pytest.raises(SourceRefused, match="more than 1000 bytes"):
        extract(outer, tmp_path / "small", limits=Limits(max_total_bytes=1000))
    with pytest.raises(SourceRefused, match="nested more than 0 deep"):
        extract(outer, tmp_path / "flat", limits=Limits(max_depth=0))


def test_not_a_zip(tmp_path):
    src = tmp_path / "fake.zip"
    src.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SourceRefused, match="not a readable zip"):
        extract(src, tmp_path / "out", display="fake.zip")


def test_cp950_zipinfo_roundtrip_through_python(tmp_path):
    src = tmp_path / "c.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr(Cp950ZipInfo("臺中市.txt"), b"1")
    with zipfile.ZipFile(src, metadata_encoding="cp950") as zf:
        assert zf.namelist() == ["臺中市.txt"]
