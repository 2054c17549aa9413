"""Renderers of the demo site's programme sections: each returns a :class:`Response` (bytes in memory)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from email.utils import format_datetime
from html import escape

from crawlers.demo import programmes as data
from crawlers.demo.programmes import Programme

HTML_UTF8 = "text/html; charset=utf-8"
JSON_UTF8 = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    cacheable: bool = True  # gets ETag / Last-Modified and answers conditional GETs with 304


def html_page(title: str, body: str, head: str = '<meta charset="utf-8">') -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n{head}\n<title>{escape(title)}</title>\n</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def utf8(html: str, status: int = 200, content_type: str = HTML_UTF8) -> Response:
    return Response(status, content_type, html.encode("utf-8"))


def not_found() -> Response:
    body = '<h1>404 Not Found</h1>\n<hr><p>nginx</p>'
    return Response(404, HTML_UTF8, html_page("404 Not Found", body).encode(), cacheable=False)


def cn_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _period(p: Programme) -> str:
    return f"{cn_date(p.period_start)}至{p.period_end.month}月{p.period_end.day}日"


def _detail_body(p: Programme, files_prefix: str, crumb: str) -> str:
    rows = [
        ("主办单位", p.organizer), ("承办单位", p.co_organizer), ("报名截止", cn_date(p.deadline)),
        ("培训时间", _period(p)), ("地点", p.location),
    ]
    table = "\n".join(f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    links = " ".join(
        f'<a class="attachment" href="{files_prefix}{p.id}.{ext}">{data.ATTACHMENT_LABELS[ext]}</a>'
        for ext in p.attachments
    )
    attach = f'<div class="attachments">附件：{links}</div>' if links else ""
    return (
        f'<div class="crumb"><a href="/">首页</a> &gt; {crumb}</div>\n'
        f'<h1 class="title">{escape(p.title)}</h1>\n'
        f'<div class="meta">发布日期：<span class="pubdate">{p.date.isoformat()}</span></div>\n'
        f'<table class="info">\n{table}\n</table>\n'
        f'<div class="content"><p>{escape(p.description)}</p></div>\n{attach}'
    )


def _soft_404_html(head: str) -> str:
    body = f'<div class="error"><p>{data.SOFT_404_TEXT}</p><p><a href="/">返回首页</a></p></div>'
    return html_page("页面不存在", body, head)


def _pager(total: int, current: int, prev: str | None, nxt: str | None) -> str:
    parts = [f"<span>共{total}页</span>", f"<span>当前第{current}页</span>"]
    if prev:
        parts.append(f'<a class="prev" href="{prev}">上一页</a>')
    if nxt:
        parts.append(f'<a class="next" href="{nxt}">下一页</a>')
    return '<div class="pager">' + " ".join(parts) + "</div>"


# ---- 1. mofcom: static paged GBK -----------------------------------------------------------------------

MOFCOM_HEAD = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'


def mofcom_list(day: int, index: int) -> Response:
    pgs = data.pages(data.listed("mofcom", day))
    if not 0 <= index < len(pgs):
        return not_found()

    def name(i: int) -> str:
        return "index.html" if i == 0 else f"index_{i}.html"

    items = "\n".join(
        f'<li><a href="../detail/{p.id}.html" title="{escape(p.title)}">{escape(p.title)}</a>'
        f'<span class="date">{p.date.isoformat()}</span></li>'
        for p in pgs[index]
    )
    prev = name(index - 1) if index > 0 else None
    nxt = name(index + 1) if index + 1 < len(pgs) else None
    body = (
        '<div class="crumb"><a href="/">首页</a> &gt; <a href="index.html">援外培训项目公告</a></div>\n'
        f'<ul class="list">\n{items}\n</ul>\n{_pager(len(pgs), index + 1, prev, nxt)}'
    )
    html = html_page("援外培训项目公告 - 商务部（演示）", body, MOFCOM_HEAD)
    return Response(200, "text/html; charset=GBK", html.encode("gbk"))


def mofcom_detail(day: int, pid: str) -> Response:
    """The real-world trap: the header says utf-8, the body is GBK (and says so in a meta tag)."""
    status, p = data.detail("mofcom", day, pid)
    if status == 404 or (p is None and status != "soft404"):
        return not_found()
    head = '<meta charset="gbk">'
    if p is None:
        html = _soft_404_html(head)
    else:
        crumb = '<a href="../list/index.html">援外培训项目公告</a>'
        html = html_page(p.title, _detail_body(p, "../files/", crumb), head)
    return Response(200, HTML_UTF8, html.encode("gbk"))


# ---- 2. academy: JS-rendered list fed by JSON carrying an HTML fragment ---------------------------------

def academy_shell(day: int, page: int) -> Response:
    pgs = data.pages(data.listed("academy", day))
    nxt = f"index.html?page={page + 1}" if page < len(pgs) else None
    prev = f"index.html?page={page - 1}" if page > 1 else None
    body = (
        '<div class="crumb"><a href="/">首页</a> &gt; 培训项目</div>\n<h1>国际发展合作学院 · 培训项目</h1>\n'
        f'<div id="list">加载中…</div>\n{_pager(len(pgs), page, prev, nxt)}\n'
        '<script src="/academy/app.js"></script>'
    )
    return utf8(html_page("培训项目 - 国际发展合作学院（演示）", body))


def academy_api(day: int, page: int) -> Response:
    pgs = data.pages(data.listed("academy", day))
    items = pgs[page - 1] if 1 <= page <= len(pgs) else []
    lis = "".join(
        f'<li class="item" data-id="{p.id}"><a href="{p.url}">{escape(p.title)}</a>'
        f'<span class="date">{p.date.isoformat()}</span></li>'
        for p in items
    )
    doc = {
        "page": page, "pages": len(pgs), "total": len(data.listed("academy", day)),
        "html": f'<ul class="items">{lis}</ul>',
    }
    return utf8(json.dumps(doc, ensure_ascii=False), content_type=JSON_UTF8)


def academy_detail(day: int, pid: str) -> Response:
    status, p = data.detail("academy", day, pid)
    if status == "soft404":
        return utf8(_soft_404_html('<meta charset="utf-8">'))
    if p is None:
        return not_found()
    crumb = '<a href="/academy/index.html">培训项目</a>'
    return utf8(html_page(p.title, _detail_body(p, "/academy/files/", crumb)))


# ---- 3. api: JSON with paging ---------------------------------------------------------------------------

def _api_summary(p: Programme) -> dict[str, object]:
    return {
        "id": int(p.id), "title": p.title, "url": p.url, "published": p.published.isoformat(),
        "organizer": p.organizer,
    }


def api_list(day: int, page: int, size: int) -> Response:
    items = data.listed("api", day)
    chunk = items[(page - 1) * size : page * size] if page >= 1 else ()
    doc = {"total": len(items), "page": page, "size": size, "items": [_api_summary(p) for p in chunk]}
    return utf8(json.dumps(doc, ensure_ascii=False), content_type=JSON_UTF8)


def api_item(day: int, pid: str) -> Response:
    status, p = data.detail("api", day, pid)
    if status == "soft404":
        soft = {"code": 404, "msg": data.SOFT_404_TEXT}
        return utf8(json.dumps(soft, ensure_ascii=False), content_type=JSON_UTF8)
    if p is None:
        return Response(404, JSON_UTF8, b'{"code": 404, "msg": "not found"}', cacheable=False)
    doc = _api_summary(p) | {
        "co_organizer": p.co_organizer, "deadline": p.deadline.isoformat(),
        "period": {"start": p.period_start.isoformat(), "end": p.period_end.isoformat()},
        "location": p.location, "description": p.description,
        "attachments": [
            {"name": data.ATTACHMENT_LABELS[ext], "url": path}
            for ext, path in zip(p.attachments, p.attachment_paths, strict=True)
        ],
    }
    return utf8(json.dumps(doc, ensure_ascii=False), content_type=JSON_UTF8)


# ---- 4. feeds -------------------------------------------------------------------------------------------

def feed_rss(day: int, base: str) -> Response:
    entries = "".join(
        f"<item><title>{escape(p.title)}</title><link>{base}{p.url}</link>"
        f'<guid isPermaLink="true">{base}{p.url}</guid><pubDate>{format_datetime(p.published)}</pubDate>'
        f"<description>{escape(p.description)}</description></item>\n"
        for p in data.listed("feed", day)
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>\n'
        f"<title>援外培训项目（演示）</title><link>{base}/api/programs</link>"
        f"<description>最新援外培训项目</description><language>zh-cn</language>\n{entries}</channel></rss>\n"
    )
    return utf8(xml, content_type="application/rss+xml; charset=utf-8")


def feed_atom(day: int, base: str) -> Response:
    items = data.listed("feed", day)
    updated = items[0].published.isoformat() if items else "2026-01-01T00:00:00+08:00"
    entries = "".join(
        f"<entry><title>{escape(p.title)}</title><id>{base}{p.url}</id>"
        f'<link rel="alternate" href="{base}{p.url}"/><published>{p.published.isoformat()}</published>'
        f"<updated>{p.published.isoformat()}</updated><summary>{escape(p.description)}</summary></entry>\n"
        for p in items
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f'<title>援外培训项目（演示）</title><id>{base}/atom.xml</id><updated>{updated}</updated>'
        f'<link rel="self" href="{base}/atom.xml"/><author><name>listwatch demo</name></author>\n'
        f"{entries}</feed>\n"
    )
    return utf8(xml, content_type="application/atom+xml; charset=utf-8")


# ---- 5. tenders: reverse-numbered pages ----------------------------------------------------------------

def tenders_list(day: int, number: int) -> Response:
    """``number`` 0 is the unnumbered newest page ``list.html``; 1 is the oldest page."""
    pgs = data.reverse_pages(data.listed("tenders", day))
    total = len(pgs)
    if number not in pgs:
        return not_found()

    def name(i: int) -> str:
        return "list.html" if i == 0 else f"list_{i}.html"

    rows = "\n".join(
        f'<tr><td class="no">CIETC-2026-{p.id}</td>'
        f'<td><a href="detail/{p.id}.html">{escape(p.title)}</a></td>'
        f'<td class="date">{p.date.isoformat()}</td></tr>'
        for p in pgs[number]
    )
    ordinal = 1 if number == 0 else total - number + 1
    nxt_num = total - 1 if number == 0 else number - 1
    nxt = name(nxt_num) if nxt_num >= 1 else None
    prev_num = None if number == 0 else (0 if number == total - 1 else number + 1)
    body = (
        '<div class="crumb"><a href="/">首页</a> &gt; 招标公告</div>\n'
        '<table class="tenders">\n<tr><th>编号</th><th>项目名称</th><th>发布日期</th></tr>\n'
        f"{rows}\n</table>\n"
        + _pager(total, ordinal, None if prev_num is None else name(prev_num), nxt)
    )
    return utf8(html_page("招标公告 - 中国国际经济技术交流中心（演示）", body))


def tenders_detail(day: int, pid: str) -> Response:
    status, p = data.detail("tenders", day, pid)
    if status == "soft404":
        return utf8(_soft_404_html('<meta charset="utf-8">'))
    if p is None:
        return not_found()
    crumb = '<a href="../list.html">招标公告</a>'
    return utf8(html_page(p.title, _detail_body(p, "../files/", crumb)))


# ---- site furniture -------------------------------------------------------------------------------------

def index_page() -> Response:
    links = [
        ("/mofcom/list/index.html", "援外培训项目公告（GBK 静态分页）"),
        ("/academy/index.html", "国际发展合作学院培训项目（JavaScript 渲染）"),
        ("/api/programs?page=1&amp;size=10", "项目 JSON 接口"),
        ("/feed.xml", "RSS 订阅"), ("/atom.xml", "Atom 订阅"),
        ("/tenders/list.html", "招标公告（倒序编号分页）"),
        ("/bench/list/index.html", "基准测试列表"),
    ]
    lis = "\n".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
    body = f'<h1>listwatch 演示站点</h1>\n<ul class="sections">\n{lis}\n</ul>'
    return utf8(html_page("listwatch 演示站点", body))


def robots() -> Response:
    return Response(200, "text/plain; charset=utf-8", b"User-agent: *\nDisallow: /private/\n")


def private_page() -> Response:
    return utf8(html_page("内部资料", "<h1>内部资料</h1><p>robots.txt 禁止抓取本页。</p>"))
