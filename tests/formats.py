"""Real documents of every format, written by the libraries themselves (reportlab, pypdf, python-docx), and broken ones."""

from __future__ import annotations

from pathlib import Path

PDF_PAGES = [
    [
        "The boiler must be serviced once a year by a certified engineer. The service",
        "takes about two hours and includes a safety check of the flue.",
        "Frequently Asked Questions",
        "Why does the boiler lose pressure?",
        "A leak in the heating circuit or a faulty valve lowers the pressure over time.",
    ],
    [
        "To reset the boiler, hold the red reset button for five seconds until the light",
        "turns green, then wait ten minutes before running hot water.",
    ],
]

HTML = """<!doctype html><html><head><title>Help | Acme</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@type": "FAQPage", "mainEntity": [
{"@type": "Question", "name": "How do I cancel my order?",
 "acceptedAnswer": {"@type": "Answer", "text": "<p>Open <b>Orders</b> and press Cancel within 24 hours.</p>"}},
{"@type": "Question", "name": "Do you ship abroad?",
 "acceptedAnswer": {"@type": "Answer", "text": "We ship parcels to thirty countries in Europe."}}]}</script>
<script>var tracking = "do not index me";</script></head>
<body><header><nav><a href="/">Home</a> <a href="/shop">Shop the sale</a></nav></header>
<main><h1>Help centre</h1><p>Our support team answers every message within one working day.</p>
<h2>How do I cancel my order?</h2><p>Open Orders and press Cancel within 24 hours.</p>
<details><summary>Can I change the delivery address?</summary><p>Yes, until the parcel has shipped.</p></details>
<dl><dt>Is gift wrapping free?</dt><dd>Gift wrapping costs two euros per parcel.</dd></dl>
</main><aside>Related: our summer sale</aside><footer>Copyright Acme 2025. Privacy. Cookies.</footer></body></html>
"""

RST = """Setup guide
===========

Install the package with pip and run the setup command once.

Configuration
-------------

The configuration file lives in ``~/.config/app.toml`` and is read at start.

.. a comment that is not text

Where are the logs?
   Logs are written to ``/var/log/app`` and rotated weekly.
"""


def write_pdf(path: Path, pages=PDF_PAGES, title: str = "Boiler manual") -> Path:
    """A real PDF with a text layer: one drawn line of text per entry, pages in order."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            c.drawString(50, y, line)
            y -= 16
        c.showPage()
    c.save()
    return path


def write_image_only_pdf(path: Path) -> Path:
    """A PDF whose page holds only drawn shapes: what a scan looks like to a text extractor."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    c.rect(50, 50, 300, 400, fill=1)
    c.showPage()
    c.save()
    return path


def write_encrypted_pdf(path: Path, source: Path) -> Path:
    """`source` encrypted with a user password (RC4, so no extra crypto library is needed)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def write_docx(path: Path) -> Path:
    """A real Word file: a title, paragraphs, a question heading with its answer, a table."""
    import docx

    d = docx.Document()
    d.add_heading("Travel policy", 0)
    d.add_paragraph("Employees book travel through the portal at least two weeks ahead.")
    d.add_heading("Can I fly business class?", 2)
    d.add_paragraph("Only on flights longer than eight hours, with a manager's approval.")
    d.add_heading("Hotels", 1)
    d.add_paragraph("Hotels are booked near the client's office, within the daily limit.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "City", "Daily limit"
    table.cell(1, 0).text, table.cell(1, 1).text = "Lisbon", "120 euros"
    d.save(str(path))
    return path


def write_all(folder: Path) -> Path:
    """One file of every format into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "manual.pdf")
    write_docx(folder / "travel.docx")
    (folder / "help.html").write_text(HTML, encoding="utf-8")
    (folder / "guide.rst").write_text(RST, encoding="utf-8")
    (folder / "notes.md").write_text(
        "# Office notes\n\nThe office opens at eight and closes at six on weekdays.\n\n"
        "```\n# not a heading\n```\n", encoding="utf-8"
    )
    (folder / "faq.csv").write_text("question,answer\nWho waters the plants?,The receptionist waters them on Mondays.\n", encoding="utf-8")
    return folder
