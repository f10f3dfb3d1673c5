"""Words that come from the shipped definitions (departments.yaml), marked so pybabel extracts them.

A city that renames or adds a department gets its Japanese name on every page until it adds the new
name here and runs scripts/i18n.sh; nothing breaks.
"""

from __future__ import annotations

from app.i18n import N_

DEPARTMENT_NAMES = (
    N_("市民課"),
    N_("国保年金課"),
    N_("こども福祉課"),
    N_("保育課"),
    N_("教育委員会 学事課"),
    N_("健康増進課（保健センター）"),
    N_("総合窓口"),
    N_("介護保険課"),
    N_("障害福祉課"),
    N_("税務課（市民税・資産税）"),
    N_("住宅管理課"),
    N_("上下水道局 お客さまセンター"),
)

LOCATIONS = (
    N_("本庁舎1階"),
    N_("本庁舎2階"),
    N_("本庁舎3階"),
    N_("保健センター1階"),
    N_("本庁舎4階"),
    N_("本庁舎5階"),
    N_("上下水道局庁舎1階"),
)
