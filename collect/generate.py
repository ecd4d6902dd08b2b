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
