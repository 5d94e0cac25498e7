"""A deterministic English sentence generator with a real vocabulary, for the synthetic corpus.

Sixteen sentence patterns over about 600 words (names, places, nouns, verbs, adjectives) plus numbers, years, clock
times, prices and digit strings written out as words, so that transcripts look like read-speech corpora
(LibriSpeech, speechocean762): upper case after normalization, no digits, no punctuation but apostrophes.
"""

from __future__ import annotations

import random

NAMES = """john mary david sarah michael linda james emma robert olivia william sophia richard grace thomas lucy
charles anna daniel emily paul alice mark laura george helen peter susan kevin nancy brian karen edward ruth steven
julia andrew rachel joseph claire frank diana henry martha oscar nora victor irene samuel ellen arthur rose walter
clara harry jane""".split()
PLACES = """kitchen garden station library market office school river park harbor village city museum hospital bakery
church hotel airport bridge beach forest valley farm castle theater stadium corner island tower factory""".split()
NOUNS = """apple book chair table window door letter picture basket bottle bicycle camera candle carpet clock coat
cup dog cat horse bird fish flower tree stone road wall boat train car bus ticket key map pencil paper phone radio
box bag hat shoe shirt dress ring watch coin bell lamp plate spoon knife glass bread cake cheese butter milk tea
coffee soup egg orange lemon potato tomato onion carrot rice sugar salt song story question answer idea problem
friend teacher doctor farmer driver student child neighbor baker captain soldier singer painter writer nurse
garden house room kitchen roof fence gate bench blanket pillow mirror bucket ladder rope wheel engine hammer nail
jacket umbrella wallet envelope newspaper magazine guitar piano violin drum ball kite puzzle game lesson""".split()
ADJECTIVES = """big small old new red blue green yellow white black bright dark heavy light warm cold quiet loud happy
sad early late long short clean dirty empty full soft hard sweet bitter fresh strange famous simple careful busy
lazy brave gentle polite angry tired hungry lucky strong wooden broken shiny tiny huge narrow wide young ancient
rich poor""".split()
VERBS = [  # (base, past)
    ("find", "found"), ("carry", "carried"), ("paint", "painted"), ("open", "opened"), ("close", "closed"),
    ("clean", "cleaned"), ("fix", "fixed"), ("sell", "sold"), ("buy", "bought"), ("bring", "brought"),
    ("take", "took"), ("move", "moved"), ("wash", "washed"), ("push", "pushed"), ("pull", "pulled"),
    ("drop", "dropped"), ("hide", "hid"), ("keep", "kept"), ("lose", "lost"), ("send", "sent"),
    ("show", "showed"), ("watch", "watched"), ("draw", "drew"), ("build", "built"), ("cook", "cooked"),
    ("fold", "folded"), ("lift", "lifted"), ("borrow", "borrowed"), ("return", "returned"), ("check", "checked"),
    ("count", "counted"), ("touch", "touched"), ("measure", "measured"), ("deliver", "delivered"),
    ("repair", "repaired"), ("describe", "described"), ("follow", "followed"), ("visit", "visited"),
    ("remember", "remembered"), ("forget", "forgot"),
]
MOTION = [("walk", "walked"), ("run", "ran"), ("drive", "drove"), ("go", "went"), ("travel", "traveled"),
          ("hurry", "hurried"), ("ride", "rode"), ("swim", "swam"), ("return", "returned"), ("come", "came")]
PREPOSITIONS = "near behind inside under beside above below across past beyond".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = "january february march april may june july august september october november december".split()
FURNITURE = "shelf desk table floor bench counter windowsill bed".split()
STREETS = "street road avenue lane bridge crossing".split()
CLOCK_MINUTES = ["o'clock", "thirty", "fifteen", "forty five"]
IRREGULAR_PLURALS = {"child": "children", "knife": "knives", "fish": "fish", "man": "men", "woman": "women",
                     "potato": "potatoes", "tomato": "tomatoes", "shelf": "shelves"}

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()


def number_words(n: int) -> str:
    """0 <= n < 1,000,000 in words: 342 -> 'three hundred and forty two'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = n % 1000
    tail = "" if rest == 0 else (" and " if rest < 100 else " ") + number_words(rest)
    return number_words(n // 1000) + " thousand" + tail


def year_words(year: int) -> str:
    """1984 -> 'nineteen eighty four', 2007 -> 'two thousand and seven'."""
    if 2000 <= year < 2010:
        return number_words(year)
    high, low = divmod(year, 100)
    return number_words(high) + " " + ("hundred" if low == 0 else ("oh " if low < 10 else "") + number_words(low))


def plural(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def sentence(rng: random.Random) -> str:
    """One sentence, with punctuation for prosody; normalize with TextNorm for the transcript."""
    c = rng.choice
    name, name2 = rng.sample(NAMES, 2)
    noun, noun2 = rng.sample(NOUNS, 2)
    adj, adj2 = rng.sample(ADJECTIVES, 2)
    base, past = c(VERBS)
    go, went = c(MOTION)
    num = number_words(rng.choice([rng.randint(2, 20), rng.randint(21, 99), rng.randint(100, 999)]))
    patterns = [
        lambda: f"{name} {past} the {adj} {noun} {c(PREPOSITIONS)} the {c(PLACES)}.",
        lambda: f"The {noun} in the {c(PLACES)} was {adj} and {adj2}.",
        lambda: f"Did you see {num} {plural(noun)} near the {c(PLACES)}?",
        lambda: f"Please {base} the {noun} before {c(WEEKDAYS)}.",
        lambda: f"{name} and {name2} will meet at {number_words(rng.randint(1, 12))} "
                f"{c(CLOCK_MINUTES)}.",
        lambda: f"My number is {' '.join(ONES[rng.randint(0, 9)] for _ in range(rng.randint(4, 7)))}.",
        lambda: f"In {year_words(rng.randint(1900, 2030))} we {past} {num} {plural(noun)}.",
        lambda: f"Why is the {noun} so {adj} today?",
        lambda: f"{name} said that the {adj} {noun} {past} the {noun2}.",
        lambda: f"There are {num} {adj} {plural(noun)} on the {c(FURNITURE)}.",
        lambda: f"The {noun} costs {num} dollars and {number_words(rng.randint(1, 99))} cents.",
        lambda: f"On {c(WEEKDAYS)} {name} {went} to the {c(PLACES)} with {article(adj)} {adj} {noun}.",
        lambda: f"I think the {noun} is {c(PREPOSITIONS)} the {noun2}.",
        lambda: f"Turn {c(['left', 'right'])} at the {c(ORDINALS)} {c(STREETS)} and {go} to the {c(PLACES)}.",
        lambda: f"{name}'s {noun} was {c(['not', 'never', 'always', 'still'])} {adj} in {c(MONTHS)}.",
        lambda: f"We don't {base} {plural(noun)} when the {noun2} is {adj}.",
    ]
    text = c(patterns)()
    return text[0].upper() + text[1:]


def sentences(count: int, seed: int, exclude: set[str] | None = None) -> list[str]:
    """`count` different sentences from `seed`; none whose lower-cased text is in `exclude` (which is updated)."""
    rng = random.Random(seed)
    seen = exclude if exclude is not None else set()
    out = []
    for _ in range(count * 50):
        s = sentence(rng)
        if s.lower() not in seen:
            seen.add(s.lower())
            out.append(s)
            if len(out) == count:
                return out
    raise RuntimeError(f"could not make {count} different sentences (seed {seed})")
