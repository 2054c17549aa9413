"""crawlers.propose on small pages of the shapes real listings take: what the proposed file extracts."""

from __future__ import annotations

from datetime import UTC, datetime

from crawlers.extractor import extract_page
from crawlers.propose import propose
from crawlers.sources import Source

URL = "https://example.org/meetings/"
NAV = "<nav><ul>" + "".join(f'<li><a href="/s{i}">Section {i}</a></li>' for i in range(6)) + "</ul></nav>"


def items(page: str) -> list[tuple[str, str]]:
    found = propose(URL, page, "text/html")
    assert found is not None, "no list proposed"
    source = Source.model_validate({"id": "t", "name": "t", "start_urls": [URL], **found.source})
    result = extract_page(source, URL, "listing", {"Content-Type": "text/html; charset=utf-8"},
                          page.encode("utf-8"), captured_at=datetime(2024, 1, 1, tzinfo=UTC))
    return [(str(i["fields"]["title"]), str(i["fields"]["url"])) for i in result.items]


def test_posts_each_carrying_their_own_class_are_one_list() -> None:
    posts = "".join(f'<article class="post post-{n} type-post category-{n % 3}"><h2 class="entry-title">'
                    f'<a href="/{n}/">Board meeting number {n} minutes</a></h2><p>Posted on March {n}, 2023</p>'
                    f"</article>" for n in range(1, 6))
    got = items(f"<html><body>{NAV}<main>{posts}</main></body></html>")
    assert got == [(f"Board meeting number {n} minutes", f"https://example.org/{n}/") for n in range(1, 6)]


def test_a_list_split_by_year_is_proposed_whole_but_not_a_lookalike_elsewhere() -> None:
    years = "".join(f"<h3>{y}</h3><ul>" + "".join(f'<li><a href="/m/{y}-{m}.pdf">Minutes of {m}/14/{y}</a></li>'
                                                 for m in range(1, 6 if y == 2023 else 4)) + "</ul>"
                    for y in (2023, 2022, 2021))
    aside = ('<div class="col-sm-4"><ul><li><a href="/news/1">Park news of 1/2/2023</a></li></ul></div>')
    page = f'<html><body>{NAV}<div class="row"><div class="col-sm-8">{years}</div>{aside}</div></body></html>'
    got = items(page)
    assert len(got) == 5 + 3 + 3 and ("Minutes of 2/14/2021", "https://example.org/m/2021-2.pdf") in got
    assert all("/news/" not in url for _, url in got)


def test_links_side_by_side_in_a_paragraph_are_the_items() -> None:
    links = "<br>".join(f'<a href="/docs/{d}.pdf">Meeting of January {d}, 2019</a>' for d in range(1, 8))
    got = items(f"<html><body>{NAV}<div class='content'><h1>Minutes</h1><p>{links}</p></div></body></html>")
    assert got == [(f"Meeting of January {d}, 2019", f"https://example.org/docs/{d}.pdf") for d in range(1, 8)]


def test_when_every_link_reads_agenda_the_title_is_the_text_beside_it() -> None:
    rows = "".join(f'<li>March {d}, 2019 &#8212; <a href="/a/{d}">Agenda</a> | <a href="/m/{d}.pdf">Minutes</a></li>'
                   for d in range(1, 6))
    got = items(f"<html><body>{NAV}<div class='textwidget'><ul>{rows}</ul></div></body></html>")
    assert got == [(f"March {d}, 2019", f"https://example.org/a/{d}") for d in range(1, 6)]


def test_when_every_link_reads_details_the_title_is_the_cell_that_varies() -> None:
    rows = "".join(f'<tr><td>{name}</td><td>May {d}, 2024</td><td><a href="/e/{d}">Details</a></td></tr>'
                   for d, name in enumerate(["Board meeting", "Finance committee", "Audit committee",
                                             "Special board meeting"], start=1))
    got = items(f"<html><body>{NAV}<table class='events'><tr><th>Name</th><th>Date</th><th></th></tr>{rows}"
                f"</table></body></html>")
    assert got[0] == ("Board meeting", "https://example.org/e/1") and len(got) == 4
    assert got[3] == ("Special board meeting", "https://example.org/e/4")


def test_a_card_whose_link_repeats_its_heading_with_more_words_is_titled_by_the_heading() -> None:
    names = ["Book Babies", "Studio Sessions", "Family Films", "Book Babies"]
    cards = "".join(f'<div class="card"><h3>{n}</h3><p>Main Library</p><a href="/ev/{i}">Details'
                    f'<span class="sr-only">{n} on Tuesday, February {i} at 10:30am</span></a></div>'
                    for i, n in enumerate(names, start=1))
    got = items(f"<html><body>{NAV}<div class='grid'>{cards}</div></body></html>")
    assert got == [(n, f"https://example.org/ev/{i}") for i, n in enumerate(names, start=1)]


def test_meeting_paragraphs_among_plain_paragraphs_are_picked_by_their_link() -> None:
    panels = "".join(
        '<div class="panel"><div class="panel-body"><p>Meetings are held at 65 Cadillac Square.</p>'
        + "".join(f'<p><a href="/d/{y}-{m}.pdf">{m}/{m + 10}/{y} at 2:00 pm</a></p>' for m in range(1, 5))
        + "<p>Call 555-0100 for access.</p></div></div>" for y in (2018, 2019))
    got = items(f"<html><body>{NAV}<div class='panels'>{panels}</div></body></html>")
    assert got == [(f"{m}/{m + 10}/{y} at 2:00 pm", f"https://example.org/d/{y}-{m}.pdf")
                   for y in (2018, 2019) for m in range(1, 5)]


def test_a_table_of_meetings_is_not_taken_for_navigation_tabs() -> None:
    menu = "<ul class='links'>" + "".join(f'<li><a href="/p{i}">A longer menu entry {i}</a></li>'
                                          for i in range(8)) + "</ul>"
    rows = "".join(f'<tr><td>{m}/14/2023</td><td><a href="/ev/{m}">Audit Committee - {m}/14/23</a></td></tr>'
                   for m in range(1, 5))
    got = items(f"<html><body>{menu}<table class='table table-bordered'><tbody>{rows}</tbody></table></body></html>")
    assert got == [(f"Audit Committee - {m}/14/23", f"https://example.org/ev/{m}") for m in range(1, 5)]


def test_rows_whose_only_link_is_an_icon_are_titled_by_their_date() -> None:
    icon = '<i class="fa fa-file-pdf-o"></i>'
    rows = "".join(f'<div class="minutes"><div class="minuteDate">July {d}th, 2019</div>'
                   f'<div class="minuteTime">10:00 AM</div>'
                   f'<div class="minuteAgenda"><a href="/up/{d}.pdf">{icon}</a></div></div>' for d in range(4, 9))
    got = items(f"<html><body>{NAV}<div id='minutesSection'>{rows}</div></body></html>")
    assert got == [(f"July {d}th, 2019", f"https://example.org/up/{d}.pdf") for d in range(4, 9)]


def test_a_month_calendar_gives_its_event_links_not_its_weeks() -> None:
    events = {3: ["Board of Supervisors"], 9: ["Planning Commission"], 12: ["Deferred Comp", "Library Board"],
              20: ["Board of Supervisors"]}
    cells = []
    for day in range(1, 36):
        links = "".join(f'<div class="item"><a href="/Event/{day}-{i}">{title}</a></div>'
                        for i, title in enumerate(events.get(day, [])))
        cells.append(f"<td>{day}{links}</td>" if day <= 30 else "<td></td>")
    weeks = "".join("<tr>" + "".join(cells[i:i + 7]) + "</tr>" for i in range(0, 35, 7))
    prev = '<caption><a href="?month=8">August</a> September 2022 <a href="?month=10">October</a></caption>'
    got = items(f"<html><body>{NAV}<table class='calendar'>{prev}{weeks}</table></body></html>")
    assert got == [(title, f"https://example.org/Event/{day}-{i}") for day, titles in events.items()
                   for i, title in enumerate(titles)]
