"""The licences a dataset may carry (CKAN's ``license_list``), Taiwan's open-data licence first.

The ids are CKAN's own where CKAN has the licence (``cc-by``, ``odc-odbl``, ...) plus the ones
Taiwan's portals use (``OGDL-Taiwan-1.0``, ``CC-BY-4.0``, ``CC0-1.0``, ``ODbL-1.0``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class License:
    """One licence.

    Attributes:
        id: the ``license_id`` datasets use.
        title: its name (zh-TW where Taiwan names it).
        url: where its text is.
        od_conformance: "approved" when it is an open licence (Open Definition).
        domain_content, domain_data, domain_software: what it is meant for.
    """

    id: str
    title: str
    url: str
    od_conformance: str = "approved"
    domain_content: bool = True
    domain_data: bool = True
    domain_software: bool = False

    @property
    def is_open(self) -> bool:
        """Whether datasets under it are open data (CKAN's ``isopen``)."""
        return self.od_conformance == "approved"

    def as_dict(self) -> dict:
        """CKAN's ``license_list`` item."""
        return {
            "domain_content": self.domain_content,
            "domain_data": self.domain_data,
            "domain_software": self.domain_software,
            "family": "",
            "id": self.id,
            "is_generic": self.id in ("other-open", "other-closed", "notspecified"),
            "is_okd_compliant": self.is_open,
            "is_osi_compliant": False,
            "maintainer": "",
            "od_conformance": self.od_conformance,
            "osd_conformance": "not reviewed",
            "status": "active",
            "title": self.title,
            "url": self.url,
        }


LICENSES: tuple[License, ...] = (
    License(
        "OGDL-Taiwan-1.0",
        "政府資料開放授權條款第1版 (Open Government Data License, version 1.0)",
        "https://data.gov.tw/license",
    ),
    License(
        "CC-BY-4.0",
        "創用 CC 姓名標示 4.0 (Creative Commons Attribution 4.0)",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    License(
        "CC0-1.0",
        "CC0 1.0 公眾領域貢獻宣告 (Creative Commons CCZero)",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
    License(
        "ODbL-1.0",
        "開放資料庫授權 (Open Data Commons Open Database License 1.0)",
        "https://opendatacommons.org/licenses/odbl/1-0/",
    ),
    License(
        "cc-by",
        "Creative Commons Attribution",
        "http://www.opendefinition.org/licenses/cc-by",
    ),
    License(
        "cc-zero",
        "Creative Commons CCZero",
        "http://www.opendefinition.org/licenses/cc-zero",
    ),
    License(
        "odc-odbl",
        "Open Data Commons Open Database License (ODbL)",
        "http://www.opendefinition.org/licenses/odc-odbl",
    ),
    License("other-open", "其他開放授權 (Other (Open))", ""),
    License("other-closed", "其他非開放授權 (Other (Not Open))", "", od_conformance="not reviewed"),
    License(
        "notspecified", "未指定授權 (License not specified)", "", od_conformance="not reviewed"
    ),
)

_BY_ID = {lic.id: lic for lic in LICENSES}


def license_of(license_id: str) -> License | None:
    """The licence with this id, or None for an id the portal does not know.

    Args:
        license_id: a dataset's ``license_id``.

    Returns:
        The licence, or None.
    """
    return _BY_ID.get(license_id)
