"""The movie domain: its slots and values, phrasings, parser and listener words, corpus seed."""

from __future__ import annotations

import string

from mdlib.data.domains.record import Domain, Slot

USER_SLOTS = (
    Slot("genre",
        values=("Action", "Sci-Fi", "Comedy", "Crime", "Sport", "Documentary", "Drama", "Family",
                "Horror", "War", "Music", "Fantasy", "Romance", "Western"),
        noun="genre",
        user_inform=("I like {v} movies.", "{v}.", "Something in {v}.", "A {v} movie."),
        sys_request=("What genre do you like?", "Which type of movie?", "What kind of movie?"),
        name_words=("genre", "type of movie", "kind of movie"),
        cues="genre kind type"),
    Slot("years",
        values=("60s", "70s", "80s", "90s", "2000-2010", "2010-present"),
        noun="period",
        user_inform=("From the {v}.", "{v}.", "A movie from the {v}.", "Made in the {v}."),
        sys_request=("From which period?", "Movies from what years?", "Which decade?"),
        name_words=("period", "years", "year", "decade"),
        cues="decade era period year years",
        wh="when"),
    Slot("country",
        values=("USA", "France", "China", "Korea", "Japan", "Germany", "Mexico", "Russia",
                "Thailand"),
        noun="country",
        user_inform=("From {v}.", "{v}.", "A movie made in {v}.", "I want a film from {v}."),
        sys_request=("From which country?", "Movie from what country?",
                     "Which country's movies?"),
        name_words=("country",),
        cues="countries country"),
)
SYSTEM_SLOTS = (
    Slot("rating",
        values=tuple(str(t) for t in range(5)),
        noun="rating",
        user_request=("What's the rating?", "How do people rate it?", "Is it rated well?"),
        user_yn=("Is it rated {v}?", "Does it have a rating of {v}?"),
        sys_inform=("It has a rating of {v}.", "The rating is {v}."),
        request_patterns=(r"\brat(ing|e|ed)\b",),
        cues="rated rating"),
    Slot("company",
        values=("20th Century Fox", "Sony", "MGM", "Walt Disney", "Universal"),
        noun="company",
        user_request=("Which company made it?", "Who produced it?", "Which studio is it from?"),
        user_yn=("Is it from {v}?", "Did {v} make it?"),
        sys_inform=("It was made by {v}.", "The movie is from {v}."),
        request_patterns=(r"\bcompany\b", r"\bproduc", r"\bstudio\b"),
        cues="company produced studio"),
    Slot("director",
        values=tuple(string.ascii_uppercase),
        noun="director",
        user_request=("Who directed it?", "Who is the director?", "Who made it?"),
        user_yn=("Is it directed by {v}?", "Was the director {v}?"),
        sys_inform=("It is directed by {v}.", "The director is {v}."),
        request_patterns=(r"\bdirect", r"\bwho made\b"),
        cues="directed director"),
)

DOMAIN = Domain(
    "movie", USER_SLOTS, SYSTEM_SLOTS, db_size=200,
    corpus_seed=16,
    greetings=("Want to know about movies? How can I help?", "Welcome to the movie recommender."),
    needs=("Recommend me a movie.", "I want to watch a movie."),
)
