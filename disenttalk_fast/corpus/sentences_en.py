"""English sentences for the synthetic corpus, built compositionally from word lists.

The point is phonetic variety (every English viseme, bilabial closures, rounded and spread
vowels, numbers, questions), not meaning. `sentences(count, seed)` is deterministic.
"""

from __future__ import annotations

from disenttalk_fast.corpus.templates import distinct_sentences

SUBJECTS = ("I", "You", "We", "They", "My brother", "Your sister", "The teacher", "Our neighbour",
            "The old man", "A young woman", "The doctor", "Every student", "My friend Paul",
            "The children", "Maria", "The farmer", "Nobody", "Somebody", "The pilot", "Bob")
SINGULAR_SUBJECTS = tuple(s for s in SUBJECTS
                          if s not in ("I", "You", "We", "They", "The children"))
VERBS_PAST = ("bought", "found", "painted", "washed", "moved", "borrowed", "fixed", "opened",
              "lost", "watched", "carried", "cooked", "measured", "pushed", "threw", "brought",
              "cleaned", "ordered", "described", "photographed")
ADJECTIVES = ("blue", "heavy", "tiny", "beautiful", "broken", "purple", "smooth", "cheap",
              "famous", "wooden", "yellow", "quiet", "huge", "funny", "modern", "strange",
              "warm", "bright", "rough", "shiny")
NOUNS = ("box", "table", "bicycle", "window", "umbrella", "picture", "machine", "boat", "book",
         "guitar", "mirror", "ball", "rope", "bottle", "pumpkin", "camera", "basket", "shoe",
         "puzzle", "violin")
PLACES = ("in the kitchen", "near the river", "at the market", "behind the house",
          "on the bus", "by the old bridge", "under the tree", "in the museum",
          "at the beach", "through the window", "in the garden", "at school")
TIMES = ("yesterday", "this morning", "last Friday", "at noon", "before lunch",
         "every Monday", "two weeks ago", "in the evening", "after the movie", "tonight")
ADVERBS = ("quickly", "slowly", "very carefully", "happily", "quietly", "suddenly", "often",
           "perfectly", "badly", "with a smile")
VERBS_3RD = ("sings", "waits", "works", "laughs", "sleeps", "moves", "speaks", "plays",
             "runs", "breathes", "whispers", "shouts")
IMPERATIVES = ("Please open", "Bring me", "Don't touch", "Look at", "Put away", "Pick up",
               "Move", "Wash", "Throw away", "Keep")
PLURALS = ("apples", "boxes", "pencils", "birds", "cups of tea", "blue shirts", "paper boats",
           "old photos", "yellow balloons", "small stones")
ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """0..99 in words ("forty-two")."""
    if not 0 <= n < 100:
        raise ValueError(f"number_words handles 0..99, got {n}")
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("" if ones == 0 else "-" + ONES[ones])


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


TEMPLATES = (
    lambda r: f"{r.choice(SUBJECTS)} {r.choice(VERBS_PAST)} the {r.choice(ADJECTIVES)} "
              f"{r.choice(NOUNS)} {r.choice(PLACES)} {r.choice(TIMES)}.",
    lambda r: f"The {r.choice(ADJECTIVES)} {r.choice(NOUNS)} is {r.choice(PLACES)}.",
    lambda r: f"{r.choice(SINGULAR_SUBJECTS)} has {number_words(r.randrange(2, 100))} "
              f"{r.choice(PLURALS)}.",
    lambda r: f"Did you see {_article(a := r.choice(ADJECTIVES))} {a} {r.choice(NOUNS)} "
              f"{r.choice(TIMES)}?",
    lambda r: f"{r.choice(IMPERATIVES)} the {r.choice(NOUNS)}, {r.choice(('please', 'now', 'thank you', 'my friend'))}.",
    lambda r: f"Why did {r.choice(('you', 'they', 'the teacher', 'your sister', 'Maria', 'Bob'))} "
              f"leave the {r.choice(NOUNS)} {r.choice(PLACES)}?",
    lambda r: f"The {r.choice(NOUNS)} costs {number_words(r.randrange(1, 100))} dollars "
              f"and {number_words(r.randrange(1, 100))} cents.",
    lambda r: f"My {r.choice(('mother', 'father', 'uncle', 'cousin', 'boss'))} "
              f"{r.choice(VERBS_3RD)} {r.choice(ADVERBS)} {r.choice(PLACES)}.",
    lambda r: f"We will meet at {number_words(r.randrange(1, 13))} o'clock "
              f"{r.choice(PLACES)}.",
    lambda r: f"{r.choice(SUBJECTS)} {r.choice(VERBS_PAST)} {number_words(r.randrange(2, 20))} "
              f"{r.choice(PLURALS)} and then {r.choice(VERBS_PAST)} the {r.choice(NOUNS)}.",
    lambda r: f"Is the {r.choice(NOUNS)} {r.choice(ADJECTIVES)} or {r.choice(ADJECTIVES)}?",
    lambda r: f"Oh, {r.choice(('wow', 'well', 'yes', 'no', 'maybe', 'look'))}! "
              f"The {r.choice(NOUNS)} {r.choice(VERBS_3RD)} {r.choice(ADVERBS)}.",
)



def sentences(count: int = 400, seed: int = 0) -> list[str]:
    """`count` distinct sentences, deterministic for a given seed."""
    return distinct_sentences(TEMPLATES, count, f"en:{seed}")
