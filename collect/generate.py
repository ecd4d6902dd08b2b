"""Dummy form responses for trying Collect out (the brief's generator): 11 columns, one of
them `submitted_at`, about 270 bytes a row, with quoted commas and quotes to keep parsers
honest."""

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

COLUMNS = [
    "response_id",
    "submitted_at",
    "name",
    "email",
    "age",
    "country",
    "rating",
    "subscribed",
    "favourite_colour",
    "comment",
    "referrer",
]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Frances"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton"]
COUNTRIES = ["Norway", "Kenya", "Brazil", "Japan", "Canada", "India", "Côte d'Ivoire", "Peru"]
COLOURS = ["red", "green", "blue", "teal", "amber", "violet", "black"]
COMMENTS = [
    "Great service, would use again; the staff were friendly and the queue was short",
    'The form said "optional" but it would not let me submit without filling it in',
    "Too slow, please fix the export page: it times out whenever I pick a whole year",
    "Loved it; told my friends, my family, and my cat, who was not impressed at all",
    "",
    "N/A",
    "Could the survey be shorter? It took me twenty minutes, and I type quickly",
]
REFERRERS = ["newsletter", "search", "friend", "social", "unknown"]


def generate(path: Path, rows: int, *, seed: int = 0, start: datetime | None = None) -> None:
    """Write `rows` responses to `path`, spread over the year before `start`."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    span = 365 * 24 * 3600
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for number in range(1, rows + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            moment = start - timedelta(seconds=rng.randrange(span))
            writer.writerow(
                [
                    f"{number:012d}-{rng.getrandbits(96):024x}",
                    moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{first} {last}",
                    f"{first.lower()}.{last.lower()}{rng.randrange(1000)}@example.org",
                    rng.randrange(16, 90),
                    rng.choice(COUNTRIES),
                    rng.randrange(1, 6),
                    rng.choice(("true", "false")),
                    rng.choice(COLOURS),
                    rng.choice(COMMENTS),
                    f"https://example.org/{rng.choice(REFERRERS)}?campaign={rng.randrange(10**6)}",
                ]
            )


# Form responses the way people really type them: about 140 bytes a row, every 7th answer
# with a quoted comma and quotes, every 11th over two lines, places in many scripts, and,
# if asked, a row with a date nobody can read every `bad_every` rows.
REALISTIC_COLUMNS = ["id", "submitted_at", "name", "email", "city", "rating", "answer"]
REALISTIC_COLUMNS += ["device", "consent"]
PEOPLE = ["Åsa Lindqvist", "José Muñoz", "Zoë Brontë", "Łukasz Wójcik", "李娜", "Nguyễn Văn An"]
PEOPLE += ["Mary O'Neil", "Ana-María Pérez", "Kofi Mensah", "Chloé Dubois", "Jürgen Weiß"]
CITIES = ["Zürich", "São Paulo", "東京", "Kraków", "Reykjavík", "Montréal", "Αθήνα", "Lagos"]
CITIES += ["Москва", "Cork", "Ciudad de México", "Nuuk"]
ANSWERS = ["fine", "ok", "quick and easy", "no comment", "too long", "would recommend"]
ANSWERS += ["", "N/A", "the page was slow", "loved the new design"]
DEVICES = ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_4)", "Mozilla/5.0 (Windows NT 10.0; Win64)"]
DEVICES += ["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (Linux; Android 14; Pixel 8)"]


def generate_realistic(
    path: Path,
    rows: int,
    *,
    seed: int = 0,
    line_end: str = "\n",
    bad_every: int = 0,
) -> None:
    """Write `rows` realistic responses to `path`, lines ending in `line_end`."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator=line_end)
        writer.writerow(REALISTIC_COLUMNS)
        for number in range(1, rows + 1):
            moment = start - timedelta(seconds=rng.randrange(365 * 24 * 3600))
            answer = rng.choice(ANSWERS)
            if number % 7 == 0:
                answer += ', with "quotes", commas'
            if number % 11 == 0:
                answer += f"{line_end}and a second line"
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S+01:00" if number % 3 else "%Y-%m-%d %H:%M")
            if bad_every and number % bad_every == 0:
                stamp = "last Tuesday"
            writer.writerow(
                [
                    number,
                    stamp,
                    rng.choice(PEOPLE),
                    f"user{rng.randrange(10**6)}@mail{rng.randrange(100)}.example.com",
                    rng.choice(CITIES),
                    rng.randrange(1, 6),
                    answer,
                    rng.choice(DEVICES),
                    rng.choice(("yes", "no")),
                ]
            )
