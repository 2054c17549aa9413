"""Binary assets, scripts, fault pages and benchmark pages of the demo site (built in code, cached)."""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from functools import lru_cache
from html import escape

from crawlers.demo.pages import HTML_UTF8, Response, html_page, utf8

LARGE_SIZE = 3 * 1024 * 1024
HUGE_SIZE = 20 * 1024 * 1024
HUGE_CHUNK = 1024 * 1024


@lru_cache(maxsize=256)
def pdf(label: str, large: bool = False) -> bytes:
    """A small valid one-page PDF (xref offsets computed); ``large`` pads the content stream to > 3 MB."""
    text = f"BT /F1 18 Tf 72 770 Td (listwatch demo attachment {label}) Tj ET\n".encode("ascii")
    if large:
        line = b"% padding line of the large demo attachment, kept for size-cap tests ..................\n"
        text += line * (LARGE_SIZE // len(line) + 1)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@lru_cache(maxsize=256)
def doc(label: str) -> bytes:
    """Not a real Word file: the OLE2 magic followed by filler, enough for MIME sniffers."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + f"listwatch demo document {label}\n".encode() * 64


@lru_cache(maxsize=1)
def png() -> bytes:
    """A valid 16x16 RGB PNG (a red square)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    raw = b"".join(b"\x00" + b"\xc8\x10\x2e" * 16 for _ in range(16))
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


APP_JS = """(function () {
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/academy/style.css";
  document.head.appendChild(css);
  var logo = new Image();
  logo.id = "logo";
  logo.alt = "logo";
  logo.src = "/academy/logo.png";
  document.body.insertBefore(logo, document.body.firstChild);
  var page = parseInt(new URLSearchParams(location.search).get("page") || "1", 10) || 1;
  fetch("/academy/api/list?page=" + page)
    .then(function (r) { return r.json(); })
    .then(function (data) {
      document.getElementById("list").innerHTML = data.html;
      document.body.dataset.loaded = "1";
      var done = document.createElement("div");
      done.id = "loaded";
      done.textContent = "共" + data.total + "条，第" + data.page + "/" + data.pages + "页";
      document.body.appendChild(done);
    })
    .catch(function () { document.getElementById("list").textContent = "加载失败，请刷新重试"; });
})();
"""

STYLE_CSS = """body { font-family: "Microsoft YaHei", sans-serif; margin: 2em; }
#logo { width: 16px; height: 16px; }
.items { list-style: none; padding: 0; }
.item .date { color: #888; margin-left: 1em; }
"""

# ---- fault pages ----------------------------------------------------------------------------------------

_GBK_TEXT = (
    "<h1>关于举办2026年发展中国家数字经济官员研修班的通知</h1>\n"
    "<p>为落实全球发展倡议，加强与发展中国家在数字经济领域的交流合作，商务部定于2026年5月在北京举办"
    "发展中国家数字经济官员研修班。研修内容包括中国数字经济发展政策、电子商务与数字贸易实践、"
    "数字基础设施建设经验等。请各有关单位按照通知要求，于报名截止日期前报送学员推荐材料。</p>\n"
    '<ul class="list"><li><a href="/mofcom/detail/1001.html">2026年发展中国家数字经济官员研修班</a>'
    '<span class="date">2026-01-05</span></li></ul>\n'
)


@lru_cache(maxsize=1)
def wrong_charset() -> Response:
    html = html_page("商务部援外培训", _GBK_TEXT, '<meta charset="gbk">')
    return Response(200, HTML_UTF8, html.encode("gbk"))


@lru_cache(maxsize=1)
def no_charset() -> Response:
    html = f"<html><head><title>商务部援外培训项目通知</title></head><body>\n{_GBK_TEXT * 3}</body></html>\n"
    return Response(200, "text/html", html.encode("gbk"))


@lru_cache(maxsize=1)
def bad_gzip() -> Response:
    full = gzip.compress(html_page("压缩错误", _GBK_TEXT * 4).encode("utf-8"), mtime=0)
    return Response(200, HTML_UTF8, full[: len(full) // 2], (("Content-Encoding", "gzip"),), cacheable=False)


@lru_cache(maxsize=1)
def huge_chunk() -> bytes:
    seed = hashlib.sha256(b"listwatch").digest()
    return (seed * (HUGE_CHUNK // len(seed) + 1))[:HUGE_CHUNK]


def unavailable() -> Response:
    body = "<h1>503 Service Temporarily Unavailable</h1>\n<hr><p>nginx</p>"
    html = html_page("503 Service Temporarily Unavailable", body)
    return Response(503, HTML_UTF8, html.encode(), cacheable=False)


def flaky_ok() -> Response:
    body = (
        '<ul class="list"><li><a href="/mofcom/detail/1001.html">2026年发展中国家数字经济官员研修班</a>'
        '<span class="date">2026-01-05</span></li></ul>'
    )
    return Response(200, HTML_UTF8, html_page("临时故障后恢复", body).encode(), cacheable=False)


def jsl_challenge() -> Response:
    """HTTP 412 JavaScript cookie challenge in the style of 加速乐 (``__jsl_clearance_s``)."""
    script = (
        "<script>document.cookie=('__jsl_clearance_s=1767225600.123|0|'+(function(){var a=['Qx','7b','%3D'];"
        "return a.join('')+'8kLm2VdE'})())+';max-age=3600;path=/';"
        "location.href=location.pathname+location.search</script>"
    )
    return Response(
        412, HTML_UTF8, f"<html><body>{script}</body></html>".encode(),
        (("Set-Cookie", "__jsluid_s=3f9a6c1d2b7e4058a1c2d3e4f5a6b7c8; max-age=31536000; path=/; HttpOnly"),),
        cacheable=False,
    )


def cloudflare_challenge() -> Response:
    body = (
        '<div class="main-wrapper" role="main"><div class="main-content">'
        '<h1 class="zone-name-title h1">127.0.0.1</h1><h2 id="challenge-running" class="h2">'
        "Checking if the site connection is secure</h2>"
        '<noscript><div id="challenge-error-title">Enable JavaScript and cookies to continue</div></noscript>'
        '<div id="challenge-body-text" class="core-msg spacer">127.0.0.1 needs to review the security '
        "of your connection before proceeding.</div></div></div>\n"
        "<script>(function(){window._cf_chl_opt={cvId: '3',cZone: '127.0.0.1',cType: 'managed',"
        "cRay: '8c1f2e3d4a5b6c7d',cH: 'x9YkQ'};var cpo = document.createElement('script');"
        "cpo.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=8c1f2e3d4a5b6c7d';"
        "window._cf_chl_opt.cOgUHash = location.hash;document.getElementsByTagName('head')[0]"
        ".appendChild(cpo);}());</script>"
    )
    head = '<meta charset="UTF-8"><meta name="robots" content="noindex,nofollow">'
    html = html_page("Just a moment...", body, head)
    headers = (
        ("cf-mitigated", "challenge"), ("cf-ray", "8c1f2e3d4a5b6c7d-SIN"), ("Cache-Control", "no-cache"),
        ("Server", "cloudflare"),
    )
    return Response(503, HTML_UTF8, html.encode(), headers, cacheable=False)


# ---- benchmark section ----------------------------------------------------------------------------------

_BENCH_NAV = "".join(
    f'<li><a href="/bench/section/{i}.html">栏目导航 {i}：援外培训项目公告</a></li>' for i in range(24)
)
_BENCH_FOOT = (
    '<div class="footer"><p>主办单位：listwatch 演示站点 · 基准测试栏目 · '
    "本页面内容由程序生成，仅用于抓取性能测试。</p>"
    "<p>地址：北京市朝阳区示例路1号 · 邮编：100000 · 联系电话：010-00000000 · 技术支持：listwatch</p></div>"
)


_COMMON = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
)


def _filler(index: int, kb: int) -> str:
    """Varied Chinese prose (deterministic per page) that compresses like real page text, not like padding."""
    if kb <= 0:
        return ""
    state = index * 2654435761 + 12345
    chars = []
    for _ in range(kb * 1024 // 3):  # three UTF-8 bytes per character
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        chars.append(_COMMON[state % len(_COMMON)])
    text = "".join(chars)
    paragraphs = "".join(f"<p>{text[i:i + 120]}</p>" for i in range(0, len(text), 120))
    return f'<div class="sidebar">{paragraphs}</div>'


def bench_page(index: int, total: int, pad_kb: int = 0) -> Response:
    items = "\n".join(
        f'<li><a href="/bench/item/{n}">基准测试项目 {n}：2026年发展中国家经济管理官员研修班</a>'
        '<span class="date">2026-01-01</span></li>'
        for n in range(index * 20 + 1, index * 20 + 21)
    )
    nxt = f'<a class="next" href="index_{index + 1}.html">下一页</a>' if index + 1 < total else ""
    body = (
        f'<ul class="nav">{_BENCH_NAV}</ul>\n<h1>基准测试列表 第{index + 1}页</h1>\n'
        f'<ul class="list">\n{items}\n</ul>\n<div class="pager">共{total}页 {nxt}</div>\n{_filler(index, pad_kb)}'
        f"{_BENCH_FOOT}"
    )
    return utf8(html_page(f"基准测试列表 {escape(str(index + 1))}", body))
