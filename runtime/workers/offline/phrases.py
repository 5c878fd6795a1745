"""What the offline user simulator and agent say: phrase banks by tone, and word helpers.

Kept apart from the dialogue logic (dialog.py) so wording can grow without touching it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

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
INFO = {"polite": ["{items}. Thank you!", "Thanks for asking. {Items}."],
        "terse": ["{items}."],
        "impatient": ["{items}. Please hurry.", "{items}. Can we move on?"],
        "neutral": ["{items}.", "Here you go: {items}."]}
NOVICE = ["Let me see... {items}.", "Um, I think {items}.", "Hold on, let me check. {Items}."]
CONFIRM = {"polite": ["Yes, please go ahead.", "Yes please, that's correct.", "Yes, that's right. Please proceed."],
           "terse": ["Yes.", "Confirm.", "Go ahead."],
           "impatient": ["Yes, go ahead.", "Yes, do it now."],
           "neutral": ["Yes, go ahead.", "Yes, that's correct.", "Confirmed."]}
SWITCH = ["Actually, wait. I'd rather go with {value} for the {key}.",
          "Hold on, I changed my mind: the {key} should be {value}.",
          "Actually, let's use {value} as the {key} instead."]
REPORT = ["Done. It says: {out}", "I did it. The phone shows: {out}", "Finished. Now it says: {out}"]
BYE = {"polite": ["Thanks, that's all I needed.", "Great, thank you so much!"],
       "terse": ["Thanks.", "That's all."],
       "impatient": ["Finally. Thanks.", "That's all, bye."],
       "neutral": ["Thank you, that's everything.", "Great, thanks for your help."]}

CLARIFY = ["Of course. What can I help you with today?", "Sure, what would you like me to do for you?",
           "Happy to help. What do you need?"]
ASK_FIRST = ["To get started, could you give me the {keys}?", "Could you tell me the {keys}, please?",
             "I can help with that. Could you share the {keys}?"]
ASK_MORE = ["Thanks. Could you also give me the {keys}?", "Got it. And the {keys}?",
            "Thank you. I also need the {keys}."]
CONFIRM_ASK = ["I'm about to {action}. Shall I go ahead? Please reply yes to confirm.",
               "To confirm: I will {action}. Do you want me to proceed (yes/no)?",
               "Here is what I'll do: {action}. Can you confirm with a yes?"]
UPDATED = "Understood, I've updated that."
INSTRUCT = ["Could you please {action} on your phone and tell me what it shows?",
            "Please {action} on your device, then let me know what you see."]
THANKS = ["Thanks for doing that.", "Thank you, that helps."]
READ_OK = ["I found it: {facts}.", "Here is what I see: {facts}.", "I've pulled that up: {facts}."]
READ_EMPTY = "I've checked that."
READ_FAIL = "That lookup did not work: {error}"
RECHECK = "I couldn't find that: {error} Could you double-check the {keys}?"
WRITE_OK = ["Done: {action} went through ({facts}).", "All set, {action} is complete ({facts})."]
WRITE_FAIL = "I'm sorry, I couldn't {action}: {error}"
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


def words(name: str) -> str:
    return str(name).replace("_", " ")


def keys_words(keys: Sequence[str]) -> str:
    names = [words(k) for k in keys]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------- text from data
MAX_FACTS = 4  # facts quoted from one tool output


def error_text(content: str) -> str:
    text = content.removeprefix("Error: ")
    return text if text.endswith((".", "!", "?")) else text + "."


def goal_sentence(objective: str) -> str:
    """The objective as the user says it: "Cancel reservation X." → "I'd like to cancel ..."."""
    text = " ".join(str(objective).split()) or "I need help with my account."
    if text[-1] not in ".!?":
        text += "."
    first = text.split()[0]
    if first.lower() in ("i", "i'd", "i'm", "my", "we", "our", "can", "could", "please"):
        return text
    keep = first.isupper() or any(ch.isdigit() for ch in first)
    return "I'd like to " + (text if keep else text[0].lower() + text[1:])


def facts_of(content: str) -> str:
    """A few facts quoted from a tool output: status and ids first, then other scalars."""
    try:
        value = json.loads(content)
    except ValueError:
        first = content.split(". ")[0].strip().rstrip(".")
        return first[:120]
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            inner = facts_of(json.dumps(value[0]))
            return f"the first result has {inner}" if inner else ""
        return ", ".join(str(v) for v in value[:5] if not isinstance(v, (dict, list)))
    if not isinstance(value, dict):
        return "" if value is None else f"result: {value}"
    items = []
    for k, v in value.items():
        if isinstance(v, bool):
            items.append((k, "yes" if v else "no"))
        elif isinstance(v, (int, float)) or (isinstance(v, str) and 0 < len(v) <= 40):
            items.append((k, str(v).rstrip(".")))
        elif isinstance(v, list) and v and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
            items.append((k, ", ".join(map(str, v[:5]))))
    rank = {k: (0 if k == "status" else 1 if k.endswith("id") else 2) for k, _ in items}
    items.sort(key=lambda kv: rank[kv[0]])  # stable: declaration order within a rank
    return "; ".join(f"{words(k)}: {v}" for k, v in items[:MAX_FACTS])


def describe(name: str, args: Mapping, grounded: Callable[[str], bool]) -> str:
    """"cancel reservation with reservation id X": the arguments that are grounded only, so
    that an announcement never states what nobody said."""
    parts = []
    for k, v in args.items():
        shown = v if isinstance(v, (str, int, float)) and not isinstance(v, bool) else json.dumps(v)
        if grounded(str(shown)):
            parts.append(f"{words(k)} {shown}")
    return words(name) + (" with " + ", ".join(parts) if parts else "")
