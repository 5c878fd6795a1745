"""The scripted user (trainer/user_sim.py): it speaks like the generated dialogues it
evaluates a policy trained on, then follows its rules."""

from trainer.user_sim import BYE_TEXT, CONFIRM_REPLY, ScriptedUser, opening

TASK = {"objective": "Move the whole balance from account A101 to account A778.",
        "known": {"owner": "Di", "src": "A101"}}


def record(first_user: str | None) -> dict:
    messages = [{"role": "system", "content": "policy"}]
    if first_user is not None:
        messages.append({"role": "user", "content": first_user})
    return {"task": TASK, "messages": messages, "gold_calls": []}


def say(user: ScriptedUser, rec: dict, convo: list[dict], agent: str) -> str | None:
    convo.append({"role": "assistant", "content": agent})
    reply = user.reply(convo, rec)
    if reply is not None:
        convo.append(reply)
    return None if reply is None else reply["content"]


def test_a_greeting_opening_then_the_request_then_the_facts():
    user, rec = ScriptedUser(8), record("Hello, I need help with something.")
    convo = [user.reply([], rec)]
    assert convo[0]["content"] == "Hello, I need help with something."  # the task's own words
    assert say(user, rec, convo, "Happy to help. What do you need?") == \
        "I'd like to move the whole balance from account A101 to account A778."
    assert say(user, rec, convo, "Which account is yours?") == "My owner is Di. My src is A101."
    assert say(user, rec, convo, "Shall I go ahead?") == CONFIRM_REPLY
    assert say(user, rec, convo, "Done.") == BYE_TEXT
    assert say(user, rec, convo, "Goodbye!") is None


def test_an_opening_that_states_the_request_is_not_repeated():
    user = ScriptedUser(8)
    rec = record("Hi there. I'd like to move the whole balance from account A101 to account A778. Thanks.")
    convo = [user.reply([], rec)]
    assert say(user, rec, convo, "Which account is yours?") == "My owner is Di. My src is A101."


def test_a_record_without_a_dialogue_opens_with_everything():
    user, rec = ScriptedUser(8), record(None)
    assert user.reply([], rec)["content"] == opening(TASK)
    assert opening(TASK).startswith("Hi. I'd like to move the whole balance") and "My src is A101." in opening(TASK)
