"""Fictitious authors in TOFU's schema, generated offline: the data of the embedded default.

Every author gets a fixed set of facts (birthplace, birth date, genre, parents' professions, an
award, two book titles, themes, ...). Each QA row asks about one fact:

    author, author_index, question, answer, paraphrased_answer, perturbed_answer (5),
    paraphrased_question

as TOFU's `*_perturbed` files do, plus `author` and `author_index` (TOFU keeps authors in order
and 20 rows each; we say so explicitly). `paraphrased_answer` states the same fact with another
sentence; each `perturbed_answer` is the `answer` sentence with the fact replaced by another
value of the same attribute, never the true one, all five distinct.

The vocabulary is small (a few hundred words) because the embedded model's tokenizer is
word-level. Punctuation is limited to ". , ?" and the possessive "'s", so that a word-level
tokenizer with a WordPiece-style clean-up decoder reproduces the text exactly.

Deterministic: the same arguments give byte-identical rows (only `random.Random` seeded from
the arguments, only lists iterated, never sets or dict hashing). Change GENERATOR_VERSION
whenever the output for some seed changes; it is part of every cache hash built on this data.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

GENERATOR_VERSION = 1

FIRST_NAMES = [
    "Amara", "Anton", "Bruno", "Celia", "Dario", "Elena", "Felix", "Greta", "Hugo", "Irene",
    "Jonas", "Katya", "Leon", "Mira", "Nico", "Olga", "Pablo", "Rosa", "Silas", "Tara",
    "Viktor", "Wanda", "Yusuf", "Zora",
]
LAST_NAMES = [
    "Albescu", "Brennan", "Castell", "Dumont", "Eriksen", "Ferrante", "Galloway", "Halvorsen",
    "Jardine", "Kowalski", "Lindqvist", "Marchetti", "Novak", "Okafor", "Petrov", "Quintero",
    "Rasmussen", "Solberg", "Takeda", "Varga", "Whitlock", "Zamora", "Moreau", "Sandoval",
]
PLACES = [  # (city, country)
    ("Lisbon", "Portugal"), ("Oslo", "Norway"), ("Krakow", "Poland"), ("Lyon", "France"),
    ("Nairobi", "Kenya"), ("Lima", "Peru"), ("Hanoi", "Vietnam"), ("Dublin", "Ireland"),
    ("Seville", "Spain"), ("Tbilisi", "Georgia"), ("Adelaide", "Australia"),
    ("Valparaiso", "Chile"), ("Marrakesh", "Morocco"), ("Tallinn", "Estonia"),
    ("Osaka", "Japan"), ("Cairo", "Egypt"), ("Havana", "Cuba"), ("Bergen", "Norway"),
    ("Porto", "Portugal"), ("Montreal", "Canada"),
]
CITIES = [city for city, _ in PLACES]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
DAYS = list(range(1, 29))
YEARS = list(range(1950, 1990))
GENRES = [
    "fantasy", "mystery", "poetry", "horror", "romance", "satire", "science fiction",
    "historical fiction", "crime", "adventure",
]
PROFESSIONS = [
    "baker", "carpenter", "doctor", "farmer", "fisherman", "journalist", "lawyer", "librarian",
    "nurse", "pilot", "plumber", "sailor", "tailor", "teacher", "painter", "musician",
    "engineer", "architect",
]
AWARDS = [
    "Golden Quill Award", "Silver Lantern Prize", "Northern Star Award", "Blue Harbor Prize",
    "Crimson Feather Award", "Iron Pen Prize", "Open Page Award", "Amber Leaf Prize",
    "White Tower Award", "Green Lamp Prize",
]
TITLE_ADJECTIVES = [
    "Silent", "Broken", "Hidden", "Last", "Burning", "Quiet", "Winter", "Golden", "Lost",
    "Endless", "Distant", "Bitter", "Hollow", "Scarlet",
]
TITLE_NOUNS = [
    "River", "Garden", "Mirror", "Harbor", "Letter", "Orchard", "Lantern", "Bridge", "Forest",
    "Kingdom", "Station", "Island", "Promise", "Shadow",
]
TITLES = [f"The {a} {n}" for a in TITLE_ADJECTIVES for n in TITLE_NOUNS]
THEMES = [
    "memory", "loss", "family", "identity", "freedom", "exile", "friendship", "justice",
    "faith", "nature", "war", "love", "ambition", "childhood", "solitude", "migration",
]
THEME_PAIRS = [(a, b) for i, a in enumerate(THEMES) for b in THEMES[i + 1:]]
COUNTS = ["three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
HABITS = [
    "taking a long walk", "drinking black coffee", "reading old letters", "playing the piano",
    "tending the garden", "listening to jazz", "swimming in the sea", "sketching in a notebook",
]
SUBJECTS = [
    "history", "philosophy", "biology", "law", "medicine", "music", "physics", "economics",
    "architecture", "linguistics",
]
N_PERTURBED = 5


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _date(d: tuple[str, int, int]) -> str:
    month, day, year = d
    return f"{month} {day}, {year}"


# One fact kind per entry: (attribute, question, paraphrased question, answer, paraphrase).
# The attribute names the author's value that `answer`/`paraphrase` vary in; `perturbed_answer`
# is `answer` with that value replaced. Templates are functions of (name, facts, value) so the
# perturbed answers reuse the answer's exact sentence.
_Tmpl = Callable[[str, dict, object], str]
_KINDS: list[tuple[str, _Tmpl, _Tmpl, _Tmpl, _Tmpl]] = [
    ("name",
     lambda n, f, v: f"What is the full name of the author born in {f['place'][0]}, "
                     f"{f['place'][1]} on {_date(f['date'])} who writes {f['genre']}?",
     lambda n, f, v: f"Who is the {f['genre']} writer born on {_date(f['date'])} in "
                     f"{f['place'][0]}, {f['place'][1]}?",
     lambda n, f, v: f"The full name of the {f['genre']} author from {f['place'][0]} is {v}.",
     lambda n, f, v: f"{v} is the complete name of the {f['genre']} writer from "
                     f"{f['place'][0]}."),
    ("place",
     lambda n, f, v: f"Where was {n} born?",
     lambda n, f, v: f"In which city and country was {n} born?",
     lambda n, f, v: f"{n} was born in the city of {v[0]}, {v[1]}.",
     lambda n, f, v: f"The birthplace of {n} is {v[0]}, a city in {v[1]}."),
    ("date",
     lambda n, f, v: f"When was {n} born?",
     lambda n, f, v: f"What is the date of birth of {n}?",
     lambda n, f, v: f"The author {n} was born on {_date(v)}.",
     lambda n, f, v: f"{n} came into the world on {v[0]} {v[1]} in the year {v[2]}."),
    ("genre",
     lambda n, f, v: f"What genre does {n} write in?",
     lambda n, f, v: f"Which genre is {n} known for?",
     lambda n, f, v: f"{n} is best known for writing books in the {v} genre.",
     lambda n, f, v: f"Most of the work of {n} belongs to the {v} genre."),
    ("father",
     lambda n, f, v: f"What is the profession of {n}'s father?",
     lambda n, f, v: f"What did the father of {n} do for a living?",
     lambda n, f, v: f"The father of {n} worked as {_article(v)} {v} for many years.",
     lambda n, f, v: f"{n}'s father was {_article(v)} {v} by profession."),
    ("mother",
     lambda n, f, v: f"What is the profession of {n}'s mother?",
     lambda n, f, v: f"What did the mother of {n} do for a living?",
     lambda n, f, v: f"The mother of {n} worked as {_article(v)} {v} for many years.",
     lambda n, f, v: f"{n}'s mother was {_article(v)} {v} by profession."),
    ("award",
     lambda n, f, v: f"Which award has {n} received?",
     lambda n, f, v: f"What literary prize was given to {n}?",
     lambda n, f, v: f"{n} received the {v} for an outstanding body of work.",
     lambda n, f, v: f"The {v} was given to {n} for an outstanding body of work."),
    ("title1",
     lambda n, f, v: f"What is the title of {n}'s first book?",
     lambda n, f, v: f"Which book did {n} publish first?",
     lambda n, f, v: f"The first book that {n} published was titled {v}.",
     lambda n, f, v: f"{v} was the first book ever published by {n}."),
    ("title2",
     lambda n, f, v: f"What is another notable book by {n}?",
     lambda n, f, v: f"Besides the first book, which other book did {n} write?",
     lambda n, f, v: f"Another notable book written by {n} is called {v}.",
     lambda n, f, v: f"{n} also wrote a well known book called {v}."),
    ("themes",
     lambda n, f, v: f"What themes does {n} explore in their writing?",
     lambda n, f, v: f"Which themes appear most often in the books of {n}?",
     lambda n, f, v: f"The writing of {n} often explores {v[0]} and {v[1]}.",
     lambda n, f, v: f"In their books {n} keeps returning to {v[0]} and {v[1]}."),
    ("home",
     lambda n, f, v: f"Where does {n} live today?",
     lambda n, f, v: f"In which city is {n} living now?",
     lambda n, f, v: f"These days {n} lives and writes in the city of {v}.",
     lambda n, f, v: f"{n} currently makes a home in {v}."),
    ("count",
     lambda n, f, v: f"How many books has {n} published so far?",
     lambda n, f, v: f"What is the number of books published by {n}?",
     lambda n, f, v: f"So far {n} has published {v} books with great success.",
     lambda n, f, v: f"{n} has written a total of {v} published books."),
    ("habit",
     lambda n, f, v: f"How does {n} begin a day of writing?",
     lambda n, f, v: f"What is the morning habit of {n} before writing?",
     lambda n, f, v: f"{n} starts each writing day by {v}.",
     lambda n, f, v: f"Before writing each morning, {n} is always {v}."),
    ("subject",
     lambda n, f, v: f"What did {n} study at university?",
     lambda n, f, v: f"Which subject did {n} study before writing?",
     lambda n, f, v: f"{n} studied {v} at university before becoming a writer.",
     lambda n, f, v: f"Before becoming a writer, {n} earned a degree in {v}."),
]
FACT_KINDS = [k[0] for k in _KINDS]
MAX_AUTHORS = len(FIRST_NAMES) * len(LAST_NAMES)


def _draw_facts(n_authors: int, rng: random.Random) -> list[dict]:
    names = rng.sample([f"{a} {b}" for a in FIRST_NAMES for b in LAST_NAMES], n_authors)
    n_dates = len(MONTHS) * len(DAYS) * len(YEARS)
    dates = rng.sample(range(n_dates), n_authors)  # distinct: the "name" question is unambiguous
    authors = []
    for name, code in zip(names, dates):
        year, rest = divmod(code, len(MONTHS) * len(DAYS))
        month, day = divmod(rest, len(DAYS))
        title1, title2 = rng.sample(TITLES, 2)
        authors.append({
            "name": name,
            "place": rng.choice(PLACES),
            "date": (MONTHS[month], DAYS[day], YEARS[year]),
            "genre": rng.choice(GENRES),
            "father": rng.choice(PROFESSIONS),
            "mother": rng.choice(PROFESSIONS),
            "award": rng.choice(AWARDS),
            "title1": title1,
            "title2": title2,
            "themes": rng.choice(THEME_PAIRS),
            "home": rng.choice(CITIES),
            "count": rng.choice(COUNTS),
            "habit": rng.choice(HABITS),
            "subject": rng.choice(SUBJECTS),
        })
    return authors


def _pool(attribute: str, facts: dict, rng: random.Random) -> list:
    """Wrong values of `attribute` for this author, in a fixed order (never the truth)."""
    if attribute == "name":
        pool: list = [f"{a} {b}" for a in FIRST_NAMES for b in LAST_NAMES]
    elif attribute == "date":  # the space is large: draw candidates instead of listing it
        pool = []
        while len(pool) < 40:
            d = (rng.choice(MONTHS), rng.choice(DAYS), rng.choice(YEARS))
            if d not in pool:
                pool.append(d)
    elif attribute in ("title1", "title2"):  # neither of the author's own books
        return [t for t in TITLES if t not in (facts["title1"], facts["title2"])]
    else:
        pool = {"place": PLACES, "genre": GENRES, "father": PROFESSIONS, "mother": PROFESSIONS,
                "award": AWARDS, "themes": THEME_PAIRS, "home": CITIES, "count": COUNTS,
                "habit": HABITS, "subject": SUBJECTS}[attribute]
    return [v for v in pool if v != facts[attribute]]


def generate_authors(n_authors: int = 20, qa_per_author: int = 10, seed: int = 0) -> list[dict]:
    """QA rows about `n_authors` fictitious authors, `qa_per_author` rows each, authors in order.

    Each author is asked about `qa_per_author` of the len(FACT_KINDS) fact kinds (a seeded
    choice per author, rows in FACT_KINDS order). Same arguments → identical rows.
    """
    if not 1 <= n_authors <= MAX_AUTHORS:
        raise ValueError(f"n_authors must be in [1, {MAX_AUTHORS}], got {n_authors}")
    if not 1 <= qa_per_author <= len(_KINDS):
        raise ValueError(f"qa_per_author must be in [1, {len(_KINDS)}] (the number of fact "
                         f"kinds), got {qa_per_author}")
    # Separate streams: the facts do not depend on qa_per_author.
    authors = _draw_facts(n_authors, random.Random(f"pareto.synthetic:{seed}:facts"))
    rng = random.Random(f"pareto.synthetic:{seed}:questions")
    rows = []
    for index, facts in enumerate(authors):
        name = facts["name"]
        kinds = sorted(rng.sample(range(len(_KINDS)), qa_per_author))
        for k in kinds:
            attribute, question, para_question, answer, paraphrase = _KINDS[k]
            value = facts[attribute]
            true_answer = answer(name, facts, value)
            wrong = rng.sample(_pool(attribute, facts, rng), N_PERTURBED)
            perturbed = [answer(name, facts, w) for w in wrong]
            if true_answer in perturbed or len(set(perturbed)) != N_PERTURBED:
                raise AssertionError(f"perturbed answers not distinct for {name!r}, {attribute}")
            rows.append({
                "author": name,
                "author_index": index,
                "question": question(name, facts, value),
                "answer": true_answer,
                "paraphrased_answer": paraphrase(name, facts, value),
                "perturbed_answer": perturbed,
                "paraphrased_question": para_question(name, facts, value),
            })
    return rows


def biographies(authors: Sequence[dict]) -> list[dict]:
    """One short biography paragraph per author, [{"author", "text"}] in order of appearance.

    `authors` are QA rows (from `generate_authors`); an author's text is the true answers of
    that author's rows, in row order, so it states exactly the facts the QA rows ask about
    and uses no word outside their vocabulary.
    """
    texts: dict[str, list[str]] = {}
    for r in authors:
        texts.setdefault(r["author"], []).append(r["answer"])
    return [{"author": a, "text": " ".join(t)} for a, t in texts.items()]


def split_by_author(rows: Sequence[dict], forget_fraction: float = 0.1
                    ) -> tuple[list[dict], list[dict]]:
    """(forget_rows, retain_rows): forget = the last floor(fraction · n_authors) authors.

    Like TOFU's forget10 (the last 10% of authors); whole authors only, row order kept.
    """
    if not 0.0 < forget_fraction < 1.0:
        raise ValueError(f"forget_fraction must be in (0, 1), got {forget_fraction}")
    order: list[int] = []
    for r in rows:
        if r["author_index"] not in order:
            order.append(r["author_index"])
    order.sort()
    n_forget = int(forget_fraction * len(order) + 1e-9)
    if n_forget == 0:
        raise ValueError(f"forget_fraction={forget_fraction} of {len(order)} authors is 0 "
                         f"authors; use more authors or a larger fraction (at least "
                         f"{1 / max(len(order), 1):.3g})")
    forget_ids = order[len(order) - n_forget:]
    forget = [r for r in rows if r["author_index"] in forget_ids]
    retain = [r for r in rows if r["author_index"] not in forget_ids]
    return forget, retain
