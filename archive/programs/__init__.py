"""Programme records with history: the diff of each crawl against the archive, and re-extraction.

- :mod:`archive.programs.diff`: pure functions (new, changed, missing, removed, reappeared; the
  completeness guard).
- :mod:`archive.programs.store`: :func:`apply_crawl` writes programmes, versions, events and the run row.
- :mod:`archive.programs.reprocess`: rebuild a source's history from its archived WARCs.
- :mod:`archive.programs.query`: list, search, show and export programmes.
"""

from archive.programs.store import apply_crawl, programs_to_recheck

__all__ = ["apply_crawl", "programs_to_recheck"]
