"""Writes tickets_train.csv and tickets_test.csv: short customer-support tickets in four classes
(billing, technical, account, other), composed from the hand-written sentence patterns below.

Deterministic (a fixed seed): `python examples/data/make_tickets.py` rewrites the same files.
Every pattern and slot value was written for this project; nothing is downloaded.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 14
N_PER_CLASS = 80
N_TEST_PER_CLASS = 20
HELD_OUT = 4  # patterns per class seen only in the test set: texts unlike any in training

SLOTS = {
    "amount": ["$12.99", "$49", "€30", "$7.50", "£15", "$120", "$19.99", "$5"],
    "month": ["March", "last month", "October", "this month", "January", "June"],
    "plan": ["Pro plan", "basic plan", "team plan", "annual subscription", "monthly plan"],
    "device": ["iPhone", "Android phone", "laptop", "iPad", "Windows PC", "Mac", "Chromebook"],
    "app": ["the app", "the desktop client", "the web dashboard", "the mobile app", "the editor"],
    "error": ["error 500", "a blank screen", "'connection refused'", "error code 0x80", "a spinner"],
    "feature": ["export to PDF", "sync", "search", "file upload", "notifications", "dark mode"],
    "when": ["since yesterday", "after the update", "every morning", "since Monday", "today"],
    "thing": ["email address", "username", "phone number", "display name", "password"],
    "city": ["Berlin", "Lyon", "Toronto", "Osaka", "Austin", "Leeds"],
}

OPENINGS = ["", "", "Hi, ", "Hello team, ", "Quick question: ", "Urgent: ", "Hey there, "]
CLOSINGS = ["", "", " Thanks!", " Please help.", " Regards, Sam", " Any idea?", " Cheers"]

PATTERNS = {
    "billing": [
        "I was charged {amount} twice in {month}, please refund one of them.",
        "Why did my card get billed {amount} when I cancelled the {plan}?",
        "Can I get an invoice with our VAT number for the {plan}?",
        "The price of the {plan} went up to {amount} without any notice.",
        "My payment of {amount} failed but the money left my bank account.",
        "Please switch me from the {plan} to yearly billing.",
        "I need a receipt for the {amount} payment from {month}.",
        "Is there a student discount on the {plan}?",
        "You charged me {amount} after my free trial even though I cancelled.",
        "How do I update the credit card used for the {plan}?",
        "The invoice for {month} shows the wrong company address.",
        "I want a refund for the {plan}, it does not do what I need.",
        "We were billed for five seats but only use three on the {plan}.",
        "Do you accept PayPal or bank transfer for the {plan}?",
        "there's a {amount} charge on my statement I don't recognise",
        "When will the {amount} refund show up on my card?",
        # held out of training (the last HELD_OUT patterns of each class: test only)
        "{app} charged me {amount} for an in-app purchase I never made.",
        "Our finance team needs the payment history of the account since {month}.",
        "Do you offer a cheaper plan for nonprofits?",
        "The renewal of the {plan} on {month} cost more than the quote.",
    ],
    "technical": [
        "{app} crashes on my {device} {when}.",
        "I get {error} when I open {app}.",
        "{feature} stopped working {when}, nothing happens when I click it.",
        "The {feature} button is greyed out in {app} on my {device}.",
        "{app} is extremely slow on my {device}, pages take a minute to load.",
        "Files I upload never finish, {app} shows {error}.",
        "After the update {app} will not start on my {device}.",
        "{feature} works on my {device} but not in {app} on the web.",
        "My changes are not saved, {app} shows {error} every time.",
        "The API returns {error} for every request {when}.",
        "Push notifications stopped arriving on my {device} {when}.",
        "{app} freezes when I try to use {feature}.",
        "Is there a known outage? {app} shows {error}.",
        "the {device} version keeps logging errors and {feature} is broken",
        "Images do not load in {app} {when}, just {error}.",
        "Sync between my {device} and {app} is stuck at 99%.",
        "I cannot pay: the checkout page shows {error}.",
        "The login page loops back to itself on my {device}.",
        "Keyboard shortcuts do nothing in {app} on my {device}.",
        "The CSV export cuts off after a thousand rows.",
    ],
    "account": [
        "I forgot my password and the reset email never arrives.",
        "How do I change the {thing} on my account?",
        "Please delete my account and all my data.",
        "I am locked out after too many login attempts.",
        "Can I merge my two accounts into one?",
        "Someone else may have logged into my account from {city}.",
        "How do I turn on two-factor authentication?",
        "I lost my phone and cannot get the two-factor code to sign in.",
        "I want to transfer ownership of our workspace to a colleague.",
        "My {thing} is wrong on my profile and I cannot edit it.",
        "How do I add a new member to my team account?",
        "I signed up with the wrong {thing}, can you fix it?",
        "Please remove my old {thing} from my account.",
        "my account says suspended, what did I do?",
        "I cannot verify my {thing}, the link has expired.",
        "How do I log out of all devices at once?",
        "I cannot sign in to update my billing details.",
        "Please change the owner email of our subscription to my colleague.",
        "My username shows someone else's name after I logged in on my {device}.",
        "I got an email saying my {thing} was changed but I did not do it.",
    ],
    "other": [
        "Do you have an office in {city}?",
        "I just wanted to say the new design looks great.",
        "Are you hiring engineers in {city}?",
        "Can we talk about a partnership with your company?",
        "What are your support hours on public holidays?",
        "I would love to see {feature} for teams in a future version.",
        "Is there a community forum where users share tips?",
        "Could you send me your press kit?",
        "Do you sponsor meetups in {city}?",
        "Where can I read your privacy policy?",
        "Which charity do you donate to each year?",
        "Can I use your logo in my blog post?",
        "Do you offer training sessions for new users in {city}?",
        "thanks for the quick help last week, much appreciated",
        "Is your company going to the conference in {city}?",
        "Who should I contact about a speaking invitation?",
        "Will {app} ever support my {device}?",
        "Is there a discount code for attending your event in {city}?",
        "My manager asked which company makes {app}, what is your legal name?",
        "Do you have stickers or a t-shirt for fans?",
    ],
}


def fill(pattern: str, rng: random.Random) -> str:
    text = pattern.format(**{name: rng.choice(values) for name, values in SLOTS.items()})
    opening = rng.choice(OPENINGS)
    if opening:
        text = opening + text[0].lower() + text[1:]
    return text + rng.choice(CLOSINGS)


def texts_from(patterns: list[str], n: int, rng: random.Random, seen: set[str]) -> list[str]:
    """n texts from the patterns, none of them in `seen` (which they are added to)."""
    texts: list[str] = []
    while len(texts) < n:
        text = fill(rng.choice(patterns), rng)
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def split(rng: random.Random) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, test) rows: half of each class's test texts come from its held-out patterns."""
    train, test = [], []
    n_train = N_PER_CLASS - N_TEST_PER_CLASS
    for label, patterns in PATTERNS.items():
        seen: set[str] = set()
        shared, held = patterns[:-HELD_OUT], patterns[-HELD_OUT:]
        train += [(t, label) for t in texts_from(shared, n_train, rng, seen)]
        n_held = N_TEST_PER_CLASS // 2
        test += [(t, label) for t in texts_from(held, n_held, rng, seen)]
        test += [(t, label) for t in texts_from(shared, N_TEST_PER_CLASS - n_held, rng, seen)]
    return train, test


def main() -> None:
    rng = random.Random(SEED)
    here = Path(__file__).parent
    train, test = split(rng)
    rng.shuffle(train)
    rng.shuffle(test)
    with (here / "tickets_train.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["user", "expected"])
        writer.writerows(train)
    with (here / "tickets_test.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "user", "expected"])
        writer.writerows((f"t{i:03d}", text, label) for i, (text, label) in enumerate(test, 1))


if __name__ == "__main__":
    main()
