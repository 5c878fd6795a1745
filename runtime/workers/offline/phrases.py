"""What the offline user simulator and agent say: phrase banks by tone, and how a user tells
what it knows.

Kept apart from the dialogue logic (dialog.py) so wording can grow without touching it; how
data becomes words (values, records, tool calls) lives in wording.py, what a write will do in
effects.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .wording import cap, is_id, join_and, natural, plural, words

__all__ = ["cap", "words"]  # re-exported: trainer.user_sim and older callers import them here

# User phrases other than CONFIRM must never read as a confirmation (tests check it), or an
# unconfirmed write would ride on them.
OPEN = {"polite": ["Hello! Could you help me? {goal}", "Hi there. {goal} Thank you in advance."],
        "terse": ["{goal}"],
        "impatient": ["I don't have much time. {goal}", "{goal} Quickly, please."],
        "neutral": ["Hi. {goal}", "Hello. {goal}"]}
VAGUE = {"polite": ["Hello, I was hoping you could help me with something.",
                    "Hi, could you help me with an issue?"],
         "terse": ["Need help.", "Got a problem."],
         "impatient": ["I need something sorted out, fast.", "Hi. I have a problem and not much time."],
         "neutral": ["Hi, I need some help.", "Hello, I need help with something."]}
INFO = {"polite": ["{Items} Thank you!", "Thanks for asking. {Items}"],
        "terse": ["{Items}"],
        "impatient": ["{Items} Please hurry.", "{Items} Can we move on?"],
        "neutral": ["{Items}", "Here you go. {Items}"]}
NOVICE = ["Let me see... {Items}", "Um, I think... {Items}", "Hold on, let me check. {Items}"]
CONFIRM = {"polite": ["Yes, please go ahead.", "Yes please, that's correct.", "Yes, that's right. Please proceed."],
           "terse": ["Yes.", "Confirm.", "Go ahead."],
           "impatient": ["Yes, go ahead.", "Yes, do it now."],
           "neutral": ["Yes, go ahead.", "Yes, that's correct.", "Confirmed."]}
SWITCH = ["Actually, wait. {change}", "Hold on, I changed my mind: {change}", "Sorry, one change: {change}"]
REPORT = ["Done. It says: {out}", "I did it. The phone shows: {out}", "Finished. Now it says: {out}"]
ASK_MORE_Q = ["Thanks. One more question: {question}", "Great. {Question}", "Before we finish: {question}",
              "Thank you. {Question}"]
BYE = {"polite": ["Thanks, that's all I needed.", "Great, thank you so much!"],
       "terse": ["Thanks.", "That's all."],
       "impatient": ["Finally. Thanks.", "That's all, bye."],
       "neutral": ["Thank you, that's everything.", "Great, thanks for your help."]}

CLARIFY = ["Of course. What can I help you with today?", "Sure, what would you like me to do for you?",
           "Happy to help. What do you need?"]
ASK_FIRST = ["To get started, could you give me {keys}?", "Could you tell me {keys}, please?",
             "I can help with that. Could you share {keys}?"]
ASK_MORE = ["Thanks. Could you also tell me {keys}?", "Got it. Could you also let me know {keys}?",
            "Thank you. I also need to know {keys}."]
# the trainer's scripted user recognises these as questions to confirm (trainer/user_sim.py)
CONFIRM_ASK = ["I'm about to {action}. {effects}Shall I go ahead? Please reply yes to confirm.",
               "To confirm: I will {action}. {effects}Do you want me to proceed (yes/no)?",
               "Here is what I'll do: {action}. {effects}Can you confirm with a yes?"]
REASK = ["Shall I go ahead? Please reply yes to confirm.", "Do you want me to proceed (yes/no)?"]
UPDATED = "Understood, I've updated that."
INSTRUCT = ["Could you please {action} and tell me what you see?",
            "Please {action}, then let me know what it shows."]
THANKS = ["Thanks for doing that.", "Thank you, that helps."]
READ_EMPTY = "I've checked that."
READ_FAIL = "That lookup did not work: {error}"
RECHECK = "I couldn't find that: {error} Could you double-check {keys}?"
WRITE_OK = ["Done: I've {action}.", "All set. I've {action}.", "That's done: I've {action}."]
WRITE_FAIL = "I'm sorry, I couldn't {action}: {error}"
ANSWER = "To answer your question: {values}."
FINAL = ["Is there anything else I can help you with?", "Anything else I can do for you today?"]
GOODBYE = ["You're welcome. Have a great day!", "Glad I could help. Goodbye!"]

_TONES = {"polite": ("polite", "formal", "friendly", "warm", "courteous"),
          "terse": ("terse", "brief", "curt", "short", "laconic"),
          "impatient": ("impatient", "angry", "frustrated", "rushed", "annoyed", "demanding")}


def tone_of(persona: Mapping) -> str:
    text = str(persona.get("tone") or "").lower()
    return next((t for t, words in _TONES.items() if any(w in text for w in words)), "neutral")


def expertise_of(persona: Mapping) -> str:
    text = str(persona.get("expertise") or "").lower()
    if any(w in text for w in ("novice", "beginner", "low", "new")):
        return "novice"
    return "expert" if any(w in text for w in ("expert", "advanced", "high", "power")) else "intermediate"


# ---------------------------------------------------------------- what the user knows, in words

# keys that name the caller themselves ("my email"); other facts are "the ..."
_OWN = ("user_id", "customer_id", "account_id", "email", "zip", "first_name", "last_name", "full_name",
        "name", "phone_number", "date_of_birth", "dob", "owner")
_KEY_WORDS = {"dob": "date of birth", "src": "source account", "dst": "destination account",
              "owner": "name", "gb_amount": "amount of data"}
_CLAUSE = re.compile(r"^(i|i'm|i'd|i've|i'll|my|we|we're|it|it's|the|there|please|can|could)\b", re.I)
_VERB_KEY = re.compile(r"^(?P<thing>[a-z_]+?)_to_(?P<verb>[a-z]+)$")


def key_words(key: str) -> str:
    return _KEY_WORDS.get(key, words(key))


def is_clause(text: str) -> bool:
    """A phrasing the user can say as a whole sentence ("I lost my phone", "my plans changed")."""
    return bool(_CLAUSE.match(text.strip()))


def tell(key: str, value: Any, say: str | None = None) -> str:
    """One known fact as the user says it (a sentence without its final period): "my user
    id is mia_li_3668", "I want to add 2 more bags", "the new passenger is Mia Li, born
    1990-04-05". `say` is the recipe's phrasing of the value (TaskSpec.say)."""
    phrase = say if say is not None else natural(value)
    if say is not None and is_clause(say) and not say.lower().startswith(("the ", "there ")):
        return say
    verb_key = _VERB_KEY.match(key)
    if verb_key:
        thing = words(verb_key["thing"])
        if say is None and isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"I want to {verb_key['verb']} {natural(value)} {thing}"
        return f"I want to {verb_key['verb']} {phrase}"
    if key == "reason" or key.endswith("_reason"):
        return f"it's because {phrase}" if is_clause(phrase) else f"the reason is: {phrase}"
    if key.startswith("refund"):
        return f"please send the refund to {phrase}"
    if "payment" in key and isinstance(value, str):
        rest = words(key).replace("new ", "").replace("payment method", "").strip()
        return f"I'd like to use {phrase}" + (f" {rest.replace('for ', 'for the ')}" if rest else "")
    if "payment" in key:
        return f"I'd like to pay {phrase}"
    if isinstance(value, bool) or str(value).lower() in ("yes", "no"):
        yes = value is True or str(value).lower() == "yes"
        lead = f"{cap(say)}, " if say is not None and not is_clause(say) else ""
        return lead + (f"I'd like {key_words(key)}" if yes else f"I don't want {key_words(key)}")
    if isinstance(value, (int, float)) and plural(key):
        thing = key_words(key)[:-1] if value == 1 else key_words(key)
        return f"there {'is' if value == 1 else 'are'} {natural(value) if value else 'no'} {thing}"
    if isinstance(value, str) and value.lower().startswith("the ") and say is None:
        return f"it's about {value}"
    if key in _OWN:
        return f"my {key_words(key)} is {phrase}"
    return f"the {key_words(key)} {'are' if plural(key) or isinstance(value, list) and len(value) > 1 else 'is'} {phrase}"


def tell_all(facts: Sequence[tuple[str, Any, str | None]]) -> str:
    """Several facts, one sentence each: "My user id is X. I want to add 2 more bags."."""
    return " ".join(cap(tell(k, v, s)) + "." for k, v, s in facts)


def ask_for(key: str, value: Any) -> str:
    """How the agent asks for a fact: "your user id", "how many bags you'd like to add"."""
    verb_key = _VERB_KEY.match(key)
    if verb_key:
        how = "how many" if isinstance(value, (int, float)) and not isinstance(value, bool) else "which"
        return f"{how} {words(verb_key['thing'])} you'd like to {verb_key['verb']}"
    if key == "reason" or key.endswith("_reason"):
        return "the reason"
    if isinstance(value, bool) or str(value).lower() in ("yes", "no"):
        return f"whether you'd like {key_words(key)}"
    if key.startswith("refund"):
        return "where the refund should go"
    if "payment" in key:
        return "which payment method you'd like to use"
    if key in _OWN:
        return f"your {key_words(key)}"
    return f"the {key_words(key)}"


def keys_words(keys: Sequence[str], known: Mapping[str, Any] | None = None) -> str:
    known = known or {}
    return join_and([ask_for(k, known.get(k)) for k in keys])


# ---------------------------------------------------------------- text from data

def error_text(content: str) -> str:
    text = content.removeprefix("Error: ")
    return text if text.endswith((".", "!", "?")) else text + "."


_PREPOSITION = ("on", "for", "in", "at", "with", "from", "about", "regarding", "concerning")


def goal_sentence(objective: str) -> str:
    """The objective as the user says it: "Cancel reservation X." → "I'd like to cancel
    reservation X."; "On reservation X, correct Y." → "I'd like to correct Y on reservation X."."""
    text = " ".join(str(objective).split()) or "I need help with my account."
    if text[-1] not in ".!?":
        text += "."
    first = text.split()[0]
    if first.lower() in ("i", "i'd", "i'm", "my", "we", "our", "can", "could", "please"):
        return text
    if first.lower() in _PREPOSITION and ", " in text:  # "On X, do Y." → "do Y on X."
        lead, _, rest = text.partition(", ")
        text = rest[:-1] + " " + lead[0].lower() + lead[1:] + text[-1]
        first = text.split()[0]
    keep = first.isupper() or is_id(first)
    return "I'd like to " + (text if keep else text[0].lower() + text[1:])


def report_text(content: str, limit: int = 200) -> str:
    """What the user reads out from their phone: one line."""
    lines = [line.strip().rstrip(".") for line in str(content).splitlines() if line.strip()]
    text = " ".join(line if line.endswith((")", "!", "?")) else line + "." for line in lines)
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."
