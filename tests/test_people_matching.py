"""Resolving `@name` / `@pinyin` / `@userid` against one tenant's directory."""
from __future__ import annotations

import random

import pytest

from handlers.people import MAX_CANDIDATES, Directory, Person
from store.models import Employee
from store.pinyin import name_keys


def person(userid: str, name: str, department: str = "总部") -> Person:
    pinyin, initials = name_keys(name)
    return Person(userid=userid, name=name, department=department, pinyin=pinyin, initials=initials)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory([
        person("u1001", "李娜", "总部/研发中心/注册部"),
        person("u1002", "李娜娜", "总部/研发中心"),
        person("u1003", "李纳", "总部/市场部"),
        person("wangqiang", "王强", "总部/销售部"),
        person("u1005", "王芳", "总部/财务部"),
        person("zhangsan", "张三", "总部/客服部"),
        person("u2001", "张伟", "总部/研发中心"),
        person("u2002", "张伟", "总部/销售部"),
        person("u3001", "王小强", "总部/质量部"),
        person("u3002", "刘宁", "总部/人力资源部"),
        person("tony.wang", "Tony Wang", "总部/国际业务部"),
    ])


def names(match) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in match.candidates]


def test_exact_name_wins_over_similar_names(directory: Directory) -> None:
    m = directory.resolve("李娜")
    assert m.status == "one"
    assert m.person is not None and m.person.userid == "u1001"
    assert m.candidates == [m.person]


def test_exact_longer_name_is_not_confused_with_its_prefix(directory: Directory) -> None:
    m = directory.resolve("李娜娜")
    assert m.status == "one" and m.person is not None and m.person.userid == "u1002"


def test_same_name_asks_which_one_with_departments(directory: Directory) -> None:
    m = directory.resolve("张伟")
    assert m.status == "choose"
    assert m.person is None
    assert sorted(p.userid for p in m.candidates) == ["u2001", "u2002"]
    assert {p.department for p in m.candidates} == {"总部/研发中心", "总部/销售部"}


def test_shared_pinyin_is_a_tie(directory: Directory) -> None:
    m = directory.resolve("lina")
    assert m.status == "choose"
    assert set(names(m)) == {"李娜", "李纳"}  # 李娜娜 is only a prefix match, well behind


def test_pinyin_prefix_finds_the_only_candidate(directory: Directory) -> None:
    m = directory.resolve("wangq")
    assert m.status == "one" and m.person is not None and m.person.name == "王强"


def test_full_pinyin_of_a_unique_name(directory: Directory) -> None:
    m = directory.resolve("wangxiaoqiang")
    assert m.status == "one" and m.person is not None and m.person.userid == "u3001"


def test_userid_exact_is_case_insensitive(directory: Directory) -> None:
    for token in ("zhangsan", "ZhangSan", "ZHANGSAN", "Tony.Wang"):
        m = directory.resolve(token)
        assert m.status == "one", token
    assert directory.resolve("ZhangSan").person.name == "张三"  # type: ignore[union-attr]
    assert directory.resolve("TONY.WANG").person.name == "Tony Wang"  # type: ignore[union-attr]


def test_exact_case_userid_beats_a_case_folded_twin() -> None:
    d = Directory([person("Lee", "李一", "甲"), person("lee", "李二", "乙")])
    m = d.resolve("lee")
    assert m.status == "one" and m.person is not None and m.person.name == "李二"
    assert d.resolve("LEE").status == "choose"


def test_unknown_people_are_none(directory: Directory) -> None:
    for token in ("赵六", "xyz", "qqqqqq", "", "   ", "@"):
        m = directory.resolve(token)
        assert m.status == "none", token
        assert m.person is None and m.candidates == []


def test_homophone_typo_in_chinese_finds_the_person(directory: Directory) -> None:
    m = directory.resolve("王晓强")  # typed 晓 for 小
    assert m.status == "one" and m.person is not None and m.person.name == "王小强"


def test_homophone_of_two_people_asks(directory: Directory) -> None:
    m = directory.resolve("李那")
    assert m.status == "choose" and set(names(m)) == {"李娜", "李纳"}


def test_pinyin_typo_is_tolerated(directory: Directory) -> None:
    m = directory.resolve("zhangsna")
    assert m.status == "one" and m.person is not None and m.person.userid == "zhangsan"


def test_full_width_and_leading_at_are_ignored(directory: Directory) -> None:
    assert directory.resolve("＠李娜").person.userid == "u1001"  # type: ignore[union-attr]
    assert directory.resolve("@wangq").person.name == "王强"  # type: ignore[union-attr]
    m = directory.resolve("ｌｉｎａ")
    assert m.status == "choose" and set(names(m)) == {"李娜", "李纳"}


def test_initials(directory: Directory) -> None:
    m = directory.resolve("wq")
    assert m.status == "one" and m.person is not None and m.person.name == "王强"
    m = directory.resolve("ln")
    assert m.status == "choose" and set(names(m)) == {"李娜", "李纳", "刘宁"}


def test_given_name_alone_finds_the_person(directory: Directory) -> None:
    m = directory.resolve("小强")
    assert m.status == "one" and m.person is not None and m.person.name == "王小强"


def test_surname_alone_asks_among_that_family(directory: Directory) -> None:
    m = directory.resolve("王")
    assert m.status == "choose"
    assert set(names(m)) == {"王强", "王芳", "王小强"}


def test_exact_pinyin_beats_a_longer_pinyin_it_prefixes() -> None:
    d = Directory([person("a", "王琦"), person("b", "王强")])
    assert d.resolve("wangqi").person.name == "王琦"  # type: ignore[union-attr]
    m = d.resolve("wangq")
    assert m.status == "choose" and set(names(m)) == {"王琦", "王强"}


def test_latin_names_match_by_name(directory: Directory) -> None:
    m = directory.resolve("tony")
    assert m.status == "one" and m.person is not None and m.person.userid == "tony.wang"


def test_choice_card_is_capped() -> None:
    d = Directory([person(f"u{i}", "李娜", f"部门{i}") for i in range(8)])
    m = d.resolve("李娜")
    assert m.status == "choose" and len(m.candidates) == MAX_CANDIDATES
    m = d.resolve("lina")
    assert m.status == "choose" and len(m.candidates) == MAX_CANDIDATES


def test_get_by_userid(directory: Directory) -> None:
    assert directory.get("u3002").name == "刘宁"  # type: ignore[union-attr]
    assert directory.get("U3002") is None
    assert len(directory) == 11


def test_person_from_employee_computes_missing_pinyin() -> None:
    e = Employee(tenant="t1", userid="u9", name="李娜", department="总部/注册部")
    p = Person.from_employee(e)
    assert (p.userid, p.name, p.department, p.pinyin, p.initials) == ("u9", "李娜", "总部/注册部", "lina", "ln")
    stored = Employee(tenant="t1", userid="u8", name="单田芳", pinyin="shantianfang", initials="stf")
    assert Person.from_employee(stored).pinyin == "shantianfang"  # the stored reading wins over the guess
    assert Directory([Person.from_employee(stored)]).resolve("shantianfang").status == "one"


# -- a directory of 100,000 people ------------------------------------------

_SURNAMES = "张王刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑"
# None of these read as ou / yang / na, so the planted 欧阳娜娜 stays unique.
_GIVEN = "伟芳敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍红鹏飞斌宇浩凯健俊帆帅旭宁彬博文"


@pytest.fixture(scope="module")
def big_directory() -> Directory:
    keys = {ch: name_keys(ch) for ch in _SURNAMES + _GIVEN}
    rng = random.Random(20261203)
    people = []
    for i in range(100_000):
        chars = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
        pinyin = "".join(keys[c][0] for c in chars)
        initials = "".join(keys[c][1] for c in chars)
        people.append(Person(f"e{i:06d}", chars, f"总部/部门{i % 300}", pinyin, initials))
    people.append(person("target01", "欧阳娜娜", "总部/注册部"))
    return Directory(people)


def test_large_directory_exact_name(big_directory: Directory) -> None:
    m = big_directory.resolve("欧阳娜娜")
    assert m.status == "one" and m.person is not None and m.person.userid == "target01"


def test_large_directory_pinyin_and_typo(big_directory: Directory) -> None:
    assert big_directory.resolve("ouyangnana").person.userid == "target01"  # type: ignore[union-attr]
    assert big_directory.resolve("ouyangnaan").person.userid == "target01"  # type: ignore[union-attr]


def test_large_directory_userid(big_directory: Directory) -> None:
    m = big_directory.resolve("E054321")
    assert m.status == "one" and m.person is not None and m.person.userid == "e054321"


def test_large_directory_common_names_ask(big_directory: Directory) -> None:
    m = big_directory.resolve("张伟")
    assert m.status == "choose"
    assert 2 <= len(m.candidates) <= MAX_CANDIDATES
    assert all(p.name == "张伟" for p in m.candidates)
    m = big_directory.resolve("zhang")
    assert m.status == "choose" and len(m.candidates) == MAX_CANDIDATES


def test_large_directory_unknown(big_directory: Directory) -> None:
    assert big_directory.resolve("qqqxxxzzz").status == "none"
