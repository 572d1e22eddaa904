"""Writes reviews.csv, the small table of app-store reviews the notebook scores: four
10-second windows of reviews from iOS and Android users of the old app (control) and the new
one (treatment). From the second window on, the new app crashes on Android and its reviews
turn negative. Deterministic (seeded): `python3 make_reviews.py` rewrites the same file."""

import csv
import random

POSITIVE = [
    "Love the new checkout, so fast",
    "Great app, smooth and easy",
    "Works perfectly, nice design",
    "Easy to pay, great experience",
    "Fast and reliable, love it",
]
NEUTRAL = ["It is fine, nothing special", "Okay I guess", "Does the job"]
NEGATIVE = [
    "App crashes at checkout, terrible",
    "Crash after the update, I want a refund",
    "So slow and broken, hate it",
    "It froze while paying, refund please",
    "Terrible, crashes every time",
]
RATING = {"positive": (4, 5), "neutral": (3, 3), "negative": (1, 2)}


def main() -> None:
    rng = random.Random(7)
    rows = []
    for window in range(4):
        for platform in ("ios", "android"):
            for variant in ("old", "new"):
                bad = platform == "android" and variant == "new" and window >= 1
                weights = (0.25, 0.15, 0.60) if bad else (0.65, 0.20, 0.15)
                for i in range(60):
                    kind = rng.choices(("positive", "neutral", "negative"), weights)[0]
                    text = rng.choice({"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE}[kind])
                    rows.append({
                        "second": round(window * 10 + rng.uniform(0, 9.9), 3),
                        "platform": platform,
                        "app": variant,
                        "stars": rng.randint(*RATING[kind]),
                        "text": text,
                    })
    rows.sort(key=lambda r: r["second"])
    with open("reviews.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
