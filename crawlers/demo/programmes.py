"""Dataset and day logic of the demo government-programme site (pure functions, no I/O).

Each listing shape has its own programmes (ids ``1001…`` mofcom, ``2001…`` academy, ``3001…`` api,
``4001…`` tenders); the feed shows the 15 newest api programmes. Ids grow with the publish date, lists
are sorted newest first (ties broken by ``rank``). Every shape follows the same day plan; the role ids of
a shape come from :func:`plan` (``k`` is the position in the day-0 list, oldest first, n = day-0 count):

====  ==========================================================================================
day   change (relative to the previous day)
====  ==========================================================================================
0     initial state: mofcom 25, academy 25, api 23, tenders 19 programmes
1     ``new_day1``: 2 new programmes, newest (shift every item across page boundaries);
      ``edited`` (k=n-6): deadline +14 days and location change on its detail page, title unchanged;
      ``swapped`` (k=n-4, n-3, same date): their order in the list swaps (a reordering, not a change)
2     ``removed`` (k=n-8): gone from the list, detail page answers 404;
      ``soft404`` (k=n-10): gone from the list, detail answers 200 「抱歉，您访问的页面不存在！」;
      ``delisted`` (k=n-13): gone from the list, detail page still 200 and unchanged;
      ``new_day2``: 1 new programme, newest
3     ``delisted`` reappears in the list; ``backdated``: a new programme dated between k=4 and k=5,
      so it lands on a later page (and shifts every reverse-numbered tenders page)
4+    nothing changes relative to day 3 (an unchanged re-crawl)
====  ==========================================================================================

Tenders item counts per day are 19, 21, 19, 21, 21 (2, 3, 2, 3, 3 pages): with reverse numbering the
numbered pages keep their content on day 1, while the unnumbered newest page holds the remainder.
The feed (15 newest api programmes) shows the day-1 and day-2 additions and the day-2 removals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import cache

MAX_DAY = 4
SHAPES = ("mofcom", "academy", "api", "feed", "tenders")
SECTIONS = ("mofcom", "academy", "api", "tenders")  # shapes with their own programmes
ID_BASE = {"mofcom": 1000, "academy": 2000, "api": 3000, "tenders": 4000}
BASE_COUNT = {"mofcom": 25, "academy": 25, "api": 23, "tenders": 19}
_OFFSET = {"mofcom": 0, "academy": 10, "api": 20, "tenders": 30}
START = dt.date(2026, 1, 5)
FEED_SIZE = 15
SOFT_404_TEXT = "抱歉，您访问的页面不存在！"
LARGE_ATTACHMENT = "/mofcom/files/1002.pdf"  # 3 MB, for size-cap tests
ATTACHMENT_LABELS = {"pdf": "项目通知.pdf", "doc": "报名回执表.doc"}
EDITED_LOCATION = "上海市浦东新区（线上线下相结合）"

TOPICS = (
    "数字经济", "农业技术推广", "公共卫生管理", "职业教育合作", "减贫与乡村发展", "港口运营管理",
    "海关监管与通关便利化", "中小企业发展", "电子商务", "清洁能源开发", "水资源管理", "城市规划与管理",
    "防灾减灾", "智慧城市建设", "贸易便利化", "经济特区建设", "杂交水稻技术", "竹藤产业发展",
    "菌草技术", "卫星遥感应用", "铁路运营管理", "广播电视技术", "中医药发展", "畜牧兽医技术",
    "渔业养殖技术", "应对气候变化", "金融监管", "税收征管", "统计能力建设", "媒体融合发展",
    "青年领导力", "妇女与发展", "海洋经济", "绿色低碳发展", "产业园区建设", "粮食安全",
    "基础设施投融资", "工业化与产业发展", "跨境电子商务", "数字政府建设",
)
AUDIENCES = (
    "发展中国家", "非洲国家", "东盟国家", "拉美和加勒比国家", "太平洋岛国", "阿拉伯国家",
    "中亚国家", "葡语国家", "南亚国家", "上海合作组织国家", "“一带一路”共建国家",
)
KINDS = ("官员研修班", "部级研讨会", "高级官员研修班", "培训班", "管理人员研修班")
ORGANIZERS = (
    "商务部", "国家国际发展合作署", "商务部国际商务官员研修学院", "农业农村部", "国家卫生健康委员会",
)
CO_ORGANIZERS = (
    "商务部国际商务官员研修学院", "中国国际经济技术交流中心", "农业农村部对外经济合作中心",
    "浙江大学", "中国农业大学", "福建农林大学", "华南理工大学", "云南大学", "湖南农业大学",
    "中国科学院空天信息创新研究院", "北京交通大学", "天津职业技术师范大学",
)
LOCATIONS = (
    "北京市朝阳区", "浙江省杭州市", "福建省福州市", "广东省广州市", "广西壮族自治区南宁市",
    "云南省昆明市", "四川省成都市", "湖北省武汉市", "湖南省长沙市", "江苏省南京市", "海南省海口市",
)


@dataclass(frozen=True)
class Programme:
    """One programme as published on a given day."""

    id: str
    section: str
    title: str
    date: dt.date
    organizer: str
    co_organizer: str
    deadline: dt.date
    period_start: dt.date
    period_end: dt.date
    location: str
    description: str
    attachments: tuple[str, ...]  # file extensions, e.g. ("pdf", "doc")
    rank: int  # tie-break among items of the same date: higher is listed first

    @property
    def url(self) -> str:
        if self.section == "api":
            return f"/api/programs/{self.id}"
        if self.section == "academy":
            return f"/academy/detail/{self.id}.html"
        return f"/{self.section}/detail/{self.id}.html"

    @property
    def attachment_paths(self) -> list[str]:
        return [f"/{self.section}/files/{self.id}.{ext}" for ext in self.attachments]

    @property
    def published(self) -> dt.datetime:
        """Publish time, 09:00 Beijing time."""
        return dt.datetime.combine(self.date, dt.time(9, 0), tzinfo=dt.timezone(dt.timedelta(hours=8)))


@dataclass(frozen=True)
class Plan:
    """Which programme ids play which role in the day plan of one section."""

    new_day1: tuple[str, str]
    edited: str
    swapped: tuple[str, str]
    removed: str
    soft404: str
    delisted: str
    new_day2: str
    backdated: str


def effective_day(day: int) -> int:
    return min(max(day, 0), MAX_DAY)


def _section(shape: str) -> str:
    if shape == "feed":
        return "api"
    if shape not in SECTIONS:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    return shape


def _pid(section: str, k: int) -> str:
    return str(ID_BASE[section] + k + 1)


@cache
def plan(shape: str) -> Plan:
    s = _section(shape)
    n = BASE_COUNT[s]
    return Plan(
        new_day1=(_pid(s, n), _pid(s, n + 1)),
        edited=_pid(s, n - 6),
        swapped=(_pid(s, n - 4), _pid(s, n - 3)),
        removed=_pid(s, n - 8),
        soft404=_pid(s, n - 10),
        delisted=_pid(s, n - 13),
        new_day2=_pid(s, n + 2),
        backdated=_pid(s, n + 3),
    )


def _date(section: str, k: int) -> dt.date:
    n = BASE_COUNT[section]
    if k == n - 3:  # same date as k = n-4: the swapped pair
        k = n - 4
    if k < n:
        return START + dt.timedelta(days=2 * k)
    newest = START + dt.timedelta(days=2 * (n - 1))
    return {
        n: newest + dt.timedelta(days=8),
        n + 1: newest + dt.timedelta(days=9),
        n + 2: newest + dt.timedelta(days=15),
        n + 3: START + dt.timedelta(days=9),  # back-dated: between k=4 and k=5
    }[k]


def _make(section: str, k: int) -> Programme:
    off = _OFFSET[section]
    topic = TOPICS[(k + off) % len(TOPICS)]
    audience = AUDIENCES[(3 * k + off) % len(AUDIENCES)]
    kind = KINDS[(k + off // 2) % len(KINDS)]
    title = f"2026年{audience}{topic}{kind}"
    if section == "tenders":
        title += "承办机构遴选公告"
    date = _date(section, k)
    organizer = ORGANIZERS[k % len(ORGANIZERS)]
    co_organizer = CO_ORGANIZERS[(k + off) % len(CO_ORGANIZERS)]
    location = LOCATIONS[(7 * k + off) % len(LOCATIONS)]
    deadline = date + dt.timedelta(days=20 + k % 10)
    start = deadline + dt.timedelta(days=15)
    end = start + dt.timedelta(days=20)
    when = f"{start.year}年{start.month}月" + (f"至{end.month}月" if end.month != start.month else "")
    description = (
        f"为落实全球发展倡议，加强与{audience}在{topic}领域的交流与合作，{organizer}定于{when}举办{title.removesuffix('承办机构遴选公告')}，"
        f"由{co_organizer}承办。研修内容包括中国{topic}的政策与实践、专题讲座、实地考察和经验交流。"
        f"请各有关单位按照通知要求，于报名截止日期前将学员推荐材料报送承办单位。"
    )
    attachments = (), ("pdf",), ("pdf", "doc")
    return Programme(
        id=_pid(section, k), section=section, title=title, date=date, organizer=organizer,
        co_organizer=co_organizer, deadline=deadline, period_start=start, period_end=end,
        location=location, description=description, attachments=attachments[k % 3],
        rank=ID_BASE[section] + k + 1,
    )


@cache
def _catalogue(section: str) -> dict[str, Programme]:
    """Every programme of a section ever posted, in its day-0 form."""
    return {p.id: p for p in (_make(section, k) for k in range(BASE_COUNT[section] + 4))}


def _posted(section: str, day: int) -> list[str]:
    p = plan(section)
    ids = [_pid(section, k) for k in range(BASE_COUNT[section])]
    if day >= 1:
        ids += p.new_day1
    if day >= 2:
        ids.append(p.new_day2)
        ids = [i for i in ids if i not in (p.removed, p.soft404)]
    if day >= 3:
        ids.append(p.backdated)
    return ids


def _as_of(prog: Programme, day: int) -> Programme:
    p = plan(prog.section)
    if day >= 1 and prog.id == p.edited:
        prog = replace(prog, deadline=prog.deadline + dt.timedelta(days=14), location=EDITED_LOCATION)
    if day >= 1 and prog.id in p.swapped:
        other = p.swapped[1] if prog.id == p.swapped[0] else p.swapped[0]
        prog = replace(prog, rank=int(other))
    return prog


@cache
def listed(shape: str, day: int) -> tuple[Programme, ...]:
    """The programmes a section lists on ``day``, newest first (feed: the 15 newest api programmes)."""
    section, day = _section(shape), effective_day(day)
    cat = _catalogue(section)
    ids = _posted(section, day)
    if day == 2:
        ids.remove(plan(section).delisted)
    progs = sorted((_as_of(cat[i], day) for i in ids), key=lambda p: (p.date, p.rank), reverse=True)
    return tuple(progs[:FEED_SIZE] if shape == "feed" else progs)


def detail(shape: str, day: int, pid: str) -> tuple[int | str, Programme | None]:
    """Status of a programme's detail page on ``day``.

    ``(200, prog)``, ``("soft404", None)`` (HTTP 200 with 「抱歉，您访问的页面不存在！」) or ``(404, None)``.
    """
    section, day = _section(shape), effective_day(day)
    p = plan(section)
    if day >= 2 and pid == p.soft404:
        return "soft404", None
    if day >= 2 and pid == p.removed:
        return 404, None
    if pid not in _posted(section, day):
        return 404, None
    return 200, _as_of(_catalogue(section)[pid], day)


def pages(items: tuple[Programme, ...] | list[Programme], size: int = 10) -> list[list[Programme]]:
    """Split a newest-first list into pages of ``size`` (always at least one page)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)] or [[]]


def reverse_pages(
    items: tuple[Programme, ...] | list[Programme], size: int = 10
) -> dict[int, list[Programme]]:
    """Reverse numbering: page 0 (unnumbered, newest) holds ``items[: n % size or size]``, then numbered
    pages P-1 … 1 follow, page 1 holding the oldest ``size`` items (always full)."""
    n = len(items)
    head = n % size or size
    rest = list(items[head:])
    total = 1 + len(rest) // size
    out = {0: list(items[:head])}
    for j in range(total - 1):
        out[total - 1 - j] = rest[j * size : (j + 1) * size]
    return out


def expected_programmes(shape: str, day: int) -> list[dict[str, object]]:
    """Exactly what a correct crawl of ``shape`` on ``day`` extracts, newest first.

    Keys: ``id`` (str), ``title``, ``url`` (absolute path), ``date`` (ISO); every shape except ``feed`` also
    has the detail fields ``organizer``, ``deadline`` (ISO), ``location`` and ``attachments`` (paths).
    """
    out: list[dict[str, object]] = []
    for p in listed(shape, day):
        rec: dict[str, object] = {"id": p.id, "title": p.title, "url": p.url, "date": p.date.isoformat()}
        if shape != "feed":
            rec.update(
                organizer=p.organizer, deadline=p.deadline.isoformat(), location=p.location,
                attachments=p.attachment_paths,
            )
        out.append(rec)
    return out
