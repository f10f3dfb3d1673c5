"""Every application's legal basis names the article (第N条) of each law it cites, unless the text is the
city's own ordinance or is listed below as a deliberate exception with its reason."""

from __future__ import annotations

import re

import pytest

from app.forms.loader import DefinitionSet, load_definitions
from app.settings import PROJECT_ROOT

ARTICLE = re.compile(r"第[0-9０-９]+条")
PARENTHESES = re.compile(r"（[^（）]*）|\([^()]*\)")

# (application id, the cited text without an article) → why no article is given. Never invent a number:
# a provision whose article could not be verified is listed here instead.
EXCEPTIONS = {
    ("inkan_shomei", "印鑑登録証明事務処理要領"): "a ministry notice (自治振第10号通知), not a statute: it has no articles",
    ("inkan_toroku", "印鑑登録証明事務処理要領"): "a ministry notice (自治振第10号通知), not a statute: it has no articles",
    ("shogaisha_techo_henkan", "療育手帳制度要綱"): "a ministry notice put into force by each prefecture: no statute",
    ("koseki_shomei", "地方公共団体の手数料の標準に関する政令"): "fees are items of the table in the order, not articles",
    ("hoiku_henko", "子ども・子育て支援法施行規則"): "article of the notification not verified; the act's 第23条 is cited",
    ("tenshutsu_gaku", "義務教育諸学校の教科用図書の無償措置に関する法律施行規則"):
        "article for the 教科用図書給与証明書 not verified; the school order's articles are cited",
}


def cited_texts(legal_basis: str) -> list[str]:
    """The texts a legal basis cites, split at the top-level 、 (a 、 inside parentheses stays)."""
    out, depth, current = [], 0, ""
    for ch in legal_basis:
        depth += ch in "（("
        depth -= ch in "）)"
        if ch == "、" and depth == 0:
            out.append(current.strip())
            current = ""
        else:
            current += ch
    return [t for t in [*out, current.strip()] if t]


def law_name(text: str) -> str:
    return re.split(r"[ 　（(第]", text.strip(), maxsplit=1)[0]


def without_article(defs: DefinitionSet) -> dict[tuple[str, str], str]:
    found = {}
    for app_id, app in sorted(defs.applications.items()):
        for text in cited_texts(app.legal_basis):
            bare = text
            while PARENTHESES.search(bare):  # an article in a remark (…に準じる) does not count
                bare = PARENTHESES.sub("", bare)
            if ARTICLE.search(bare) or law_name(text).startswith("市"):
                continue  # the city's own ordinances and rules are numbered differently in every city
            found[(app_id, law_name(text))] = text
    return found


@pytest.fixture(scope="module")
def shipped() -> DefinitionSet:
    return load_definitions(PROJECT_ROOT / "form_definitions")


def test_every_cited_law_names_its_article_or_is_a_listed_exception(shipped: DefinitionSet) -> None:
    missing = without_article(shipped)
    assert set(missing) - set(EXCEPTIONS) == set(), "cite 第N条, or list the text with a reason"
    assert set(EXCEPTIONS) - set(missing) == set(), "an exception that no longer applies: remove it"


@pytest.mark.parametrize(("app_id", "article"), [
    ("jumin_tennyu", "住民基本台帳法 第22条"),
    ("kokuho_shutoku", "同法施行規則 第2条"),
    ("kokuho_henko", "国民健康保険法施行規則 第10条の2"),
    ("jido_teate", "第7条（認定）"),
    ("jido_teate_henko", "児童手当法施行規則 第5条（氏名変更の届出）・第6条（住所変更の届出）"),
    ("jido_teate_shometsu", "児童手当法施行規則 第7条（受給事由消滅の届出）"),
    ("shussei", "戸籍法 第49条"),
])
def test_some_articles_as_cited(shipped: DefinitionSet, app_id: str, article: str) -> None:
    assert article in shipped.applications[app_id].legal_basis


def test_the_check_finds_a_law_cited_without_article() -> None:
    assert cited_texts("住民基本台帳法 第22条（転入届）、同法施行令（届出、14日以内）") == [
        "住民基本台帳法 第22条（転入届）", "同法施行令（届出、14日以内）"]
    text = "市ひとり親家庭等医療費助成条例（児童扶養手当法 第4条の支給要件に準じる）"
    assert law_name(text) == "市ひとり親家庭等医療費助成条例"
    assert ARTICLE.search(PARENTHESES.sub("", "児童手当法施行規則（届出 第9条に準じる）")) is None
