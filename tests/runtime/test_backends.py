"""LLM backends: the real `openai` client against the real test server over loopback; the hf
backend with a tiny random model built here (no downloads); the vllm backend's pure parts."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from runtime.backends import BackendUnavailable, Completion, TokenLedger, Usage, make_backend, run_sync
from tests.llm_server import Faults, ScriptedPolicy, serve
from tests.llm_server.server import example_of

ROOT_TOOLS = [{"type": "function", "function": {
    "name": "get_reservation", "description": "Look up a reservation.",
    "parameters": {"type": "object", "properties": {"reservation_id": {"type": "string"},
                                                    "count": {"type": "integer"}},
                   "required": ["reservation_id", "count"]}}}]
HELLO = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hello there"}]
SENDS = ("http", "sdk")  # the openai backend's two ways to send; faults must read the same through both


def backend(srv, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("request_timeout", 5.0)
    return make_backend("openai", base_url=srv.base_url, model="test-model", **kw)


def call(b, messages=HELLO, **kw) -> Completion:
    return run_sync(b.complete(messages, **kw))


# ---------------------------------------------------------------- happy paths


def test_plain_completion_and_usage_from_the_server():
    with serve() as srv:
        c = call(backend(srv), agent="UserIntent")
        assert c.ok and c.attempts == 1 and c.finish_reason == "stop"
        assert c.message == {"role": "assistant", "content": "OK: hello there"}
        (req,) = srv.requests
        assert req["body"]["model"] == "test-model" and req["body"]["messages"] == HELLO
        assert c.usage == Usage(req["usage"]["prompt_tokens"], req["usage"]["completion_tokens"])
        assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0


def test_tool_call_round_trip():
    with serve() as srv:
        b = backend(srv)
        first = call(b, tools=ROOT_TOOLS)
        assert first.ok and first.finish_reason == "tool_calls" and first.content is None
        (tc,) = first.tool_calls
        assert tc["type"] == "function" and tc["function"]["name"] == "get_reservation"
        assert json.loads(tc["function"]["arguments"]) == {"reservation_id": "x", "count": 1}
        history = HELLO + [first.message, {"role": "tool", "tool_call_id": tc["id"], "name": "get_reservation",
                                           "content": '{"status": "active"}'}]
        second = call(b, history, tools=ROOT_TOOLS)
        assert second.ok and second.content == 'OK: {"status": "active"}'
        sent = srv.requests[1]["body"]
        assert sent["tools"] == ROOT_TOOLS and sent["messages"][2]["tool_calls"][0]["id"] == tc["id"]


def test_json_response_format():
    schema = {"type": "object", "properties": {"intent": {"type": "string"}, "steps": {"type": "integer"},
                                               "level": {"enum": ["easy", "hard"]}},
              "required": ["intent", "steps", "level"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "Plan", "schema": schema}}
    with serve() as srv:
        c = call(backend(srv), response_format=fmt)
        assert json.loads(c.content) == {"intent": "x", "steps": 1, "level": "easy"}
        assert srv.requests[0]["body"]["response_format"] == fmt


def test_scripted_policy_answers_in_order():
    reply = {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "get_reservation", "arguments": '{"reservation_id": "Q"}'}}]}
    policy = ScriptedPolicy([reply, lambda req: {"role": "assistant", "content": str(len(req["messages"]))}])
    with serve(policy) as srv:
        b = backend(srv)
        first = call(b, tools=ROOT_TOOLS)
        assert first.tool_calls[0]["id"] == "call_0_0" and first.tool_calls[0]["function"]["arguments"] == \
            '{"reservation_id": "Q"}'
        assert [call(b).content for _ in range(2)] == ["2", "2"]  # the last reply repeats


def test_send_modes_make_the_same_request_and_read_the_same_answer():
    with serve() as srv:
        backends = [backend(srv, send=s, api_key="sk-test") for s in SENDS]
        answers = [call(b, tools=ROOT_TOOLS) for b in backends]
        assert [b.send for b in backends] == list(SENDS)
        http, sdk = srv.requests
        assert http["body"] == sdk["body"] and http["headers"] == sdk["headers"]
        assert http["headers"]["Authorization"] == "Bearer sk-test"
        assert http["headers"]["User-Agent"].endswith(f"AsyncOpenAI/Python {__import__('openai').__version__}")
        assert [a.tool_calls[0]["id"] for a in answers] == ["call_0_0", "call_1_0"]
        assert answers[0].usage == answers[1].usage and answers[0].finish_reason == answers[1].finish_reason
        assert [a.tool_calls[0]["function"] for a in answers] == [answers[0].tool_calls[0]["function"]] * 2


def test_unknown_send_mode_is_refused():
    with pytest.raises(ValueError, match="send must be one of http, sdk"):
        make_backend("openai", model="m", send="raw")


def test_model_discovered_from_the_endpoint_when_not_given(monkeypatch):
    monkeypatch.delenv("EIGEN_MODEL", raising=False)
    with serve(model="served-model") as srv:
        b = make_backend("openai", base_url=srv.base_url)
        assert call(b).ok and b.model == "served-model"
        assert srv.requests[0]["body"]["model"] == "served-model"


# ---------------------------------------------------------------- faults and retries


@pytest.mark.parametrize("send", SENDS)
@pytest.mark.parametrize("plan", [["500", "500"], ["429"], ["bad_body"], ["500", "429", "bad_body"]])
def test_retries_recover(plan, send):
    with serve(faults=Faults(plan=plan, retry_after=0.01)) as srv:
        c = call(backend(srv, max_retries=3, send=send))
        assert c.ok and c.content == "OK: hello there"
        assert c.attempts == len(plan) + 1 == len(srv.requests)
        assert [r["fault"] for r in srv.requests] == plan + [None]


def test_429_waits_for_retry_after():
    with serve(faults=Faults(plan=["429"], retry_after=0.4)) as srv:
        c = call(backend(srv, backoff=0.001))
        assert c.ok and c.attempts == 2 and c.latency_s >= 0.4


@pytest.mark.parametrize("send", SENDS)
def test_hang_times_out_and_the_retry_succeeds(send):
    with serve(faults=Faults(plan=["hang"], hang_s=30)) as srv:
        t0 = time.perf_counter()
        c = call(backend(srv, request_timeout=0.5, send=send))
        assert c.ok and c.attempts == 2 and len(srv.requests) == 2
        assert time.perf_counter() - t0 < 3


@pytest.mark.parametrize("send", SENDS)
def test_retries_exhausted_give_a_recorded_error(send):
    with serve(faults=Faults(plan=["500"] * 5)) as srv:
        b = backend(srv, max_retries=2, send=send)
        c = call(b, agent="Judge")
        assert not c.ok and c.error.startswith("HTTP 500") and c.error.endswith("(3 attempts)")
        assert c.attempts == 3 == len(srv.requests) and c.message == {"role": "assistant", "content": None}
        assert b.ledger.by_agent()["Judge"].failed == 1


@pytest.mark.parametrize("send", SENDS)
def test_timeout_exhausted_reads_as_a_timeout(send):
    with serve(faults=Faults(plan=["hang", "hang"], hang_s=30)) as srv:
        c = call(backend(srv, request_timeout=0.3, max_retries=1, send=send))
        assert c.error == "timeout after 0.3s (2 attempts)"


@pytest.mark.parametrize("send", SENDS)
def test_400_is_not_retried(send):
    with serve(faults=Faults(plan=["400"])) as srv:
        c = call(backend(srv, max_retries=3, send=send))
        assert c.error == ("HTTP 400: {'message': 'injected bad request', 'type': 'invalid_request_error', "
                           "'code': 400} (1 attempt)")
        assert c.attempts == 1 == len(srv.requests)


def test_no_retries_means_one_attempt():
    with serve(faults=Faults(plan=["500", "429"], retry_after=0.01)) as srv:
        b = backend(srv, max_retries=0)
        assert [call(b).error for _ in range(2)] == [
            "HTTP 500: {'message': 'injected server error', 'type': 'server_error', 'code': 500} (1 attempt)",
            "HTTP 429: {'message': 'injected rate limit', 'type': 'rate_limit_error', 'code': 429} (1 attempt)"]
        assert len(srv.requests) == 2 and call(b).ok


@pytest.mark.parametrize("send", SENDS)
def test_dead_endpoint_fails_fast_without_raising(send):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = make_backend("openai", base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2, backoff=0.05,
                     send=send)
    t0 = time.perf_counter()
    c = call(b)
    assert c.error == "connection error: ConnectionRefusedError (3 attempts)" and c.attempts == 3
    assert time.perf_counter() - t0 < 2


def test_content_faults_reach_the_caller_unchanged():
    fmt = {"type": "json_object"}
    with serve(faults=Faults(plan=["truncated", "malformed", "wrong_tool"])) as srv:
        b = backend(srv)
        for _ in range(2):
            c = call(b, response_format=fmt)
            assert c.ok and c.content
            with pytest.raises(ValueError):
                json.loads(c.content)
        c = call(b, tools=ROOT_TOOLS)
        assert c.ok and c.tool_calls[0]["function"]["name"] == "get_reservation_v2"


def test_fault_rates_are_seeded():
    def faults_seen(seed):
        with serve(faults=Faults(rates={"500": 0.3, "malformed": 0.2}, seed=seed)) as srv:
            b = backend(srv, max_retries=0)
            for _ in range(30):
                call(b)
            return [r["fault"] for r in srv.requests]

    a = faults_seen(7)
    assert a == faults_seen(7) and 3 < a.count("500") < 20 and a.count("malformed") > 0


def test_bad_messages_are_a_recorded_error_and_send_nothing():
    with serve() as srv:
        b = backend(srv)
        for bad in ([], "hi", [{"role": "robot", "content": "x"}]):
            c = call(b, bad)
            assert not c.ok and c.attempts == 0
        assert srv.requests == [] and b.ledger.total().failed == 3


# ---------------------------------------------------------------- concurrency and accounting


@pytest.mark.parametrize("limit", [4, 8])
def test_concurrency_limit_is_what_the_server_sees(limit):
    with serve(latency=0.1) as srv:
        b = backend(srv, concurrency=limit)

        async def many():
            return await asyncio.gather(*(b.complete(HELLO) for _ in range(3 * limit)))

        assert all(c.ok for c in run_sync(many()))
        assert srv.max_in_flight == limit


def test_threads_calling_run_sync_share_the_limit():
    with serve(latency=0.05) as srv:
        b = backend(srv, concurrency=3)
        threads = [threading.Thread(target=call, args=(b,)) for _ in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(srv.requests) == 9 and srv.max_in_flight == 3


def test_ledger_sums_match_the_server():
    with serve(faults=Faults(plan=[None, "500"])) as srv:
        b = backend(srv)

        def work(instance, agent, n):
            with b.ledger.instance(instance):
                for i in range(n):
                    call(b, HELLO + [{"role": "user", "content": f"{agent} turn {i}"}], agent=agent)

        threads = [threading.Thread(target=work, args=(f"i{k}", agent, k + 1))
                   for k, agent in enumerate(["UserIntent", "Judge", "UserIntent"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        served = [r["usage"] for r in srv.requests if r["status"] == 200]
        total = b.ledger.total()
        assert total.calls == 6 and total.attempts == len(srv.requests) == 7
        assert total.prompt_tokens == sum(u["prompt_tokens"] for u in served)
        assert total.completion_tokens == sum(u["completion_tokens"] for u in served)
        agents = b.ledger.by_agent()
        assert agents["UserIntent"].calls == 4 and agents["Judge"].calls == 2
        assert [b.ledger.for_instance(f"i{k}").calls for k in range(3)] == [1, 2, 3]
        summary = b.ledger.summary(accepted=["i0", "i2"])
        assert summary["accepted"]["calls"] == 4 and summary["accepted"]["instances"] == 2
        assert json.loads(json.dumps(summary)) == summary


def test_ledger_merge_and_explicit_instance():
    a, b = TokenLedger(), TokenLedger()
    done = Completion(message={"role": "assistant", "content": "x"}, usage=Usage(10, 2), attempts=2)
    a.record("Judge", done, instance="i1")
    b.record("Judge", done)
    b.record("Modify", Completion.failure("HTTP 500", attempts=3, latency_s=0.0), instance="i1")
    a.merge(b.summary())
    s = a.summary()
    assert s["total"] == {"calls": 3, "failed": 1, "attempts": 7, "prompt_tokens": 20, "completion_tokens": 4,
                          "total_tokens": 24}
    assert set(s["instances"]["i1"]) == {"Judge", "Modify"}


# ---------------------------------------------------------------- factory, laziness, server CLI


def test_factory_errors_are_clear():
    with pytest.raises(ValueError, match="did you mean 'openai'"):
        make_backend("opnai")
    with pytest.raises(ValueError, match="no model"):
        make_backend("offline")
    with pytest.raises(ValueError, match="needs --model"):
        make_backend("hf")


def test_importing_backends_is_lazy():
    code = ("import sys, runtime.backends as b; b.make_backend; "
            "print(sorted(m for m in ('openai', 'torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_settling_the_heap_is_explicit_and_once():
    code = ("import gc, runtime.backends as b; print(gc.get_freeze_count()); "
            "print(b.settle_heap(('json',)), b.settle_heap(('json',)), gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.split() == ["0", "True", "False", "True"], out.stderr


def test_endpoints_from_the_environment_and_duplicates(monkeypatch):
    monkeypatch.setenv("EIGEN_BASE_URL", "http://a:1/v1 http://b:2/v1")
    assert make_backend("openai", model="m").base_urls == ["http://a:1/v1", "http://b:2/v1"]
    assert make_backend("openai", model="m", base_url="http://c:3/v1").base_urls == ["http://c:3/v1"]
    with pytest.raises(ValueError, match="given twice"):
        make_backend("openai", model="m", base_url=["http://a:1/v1", "http://a:1/v1/"])


def test_server_runs_as_a_process():
    proc = subprocess.Popen([sys.executable, "-m", "tests.llm_server.server", "--port", "0", "--latency", "0.01"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        b = make_backend("openai", base_url=line.split()[-1], model="test-model", max_retries=0)
        assert call(b).content == "OK: hello there"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_without_record_keeps_no_history_and_never_edits_the_policy():
    reply = {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "get_reservation", "arguments": "{}"}}]}
    with serve(ScriptedPolicy([reply]), record=False) as srv:
        b = backend(srv)
        ids = [call(b, tools=ROOT_TOOLS).tool_calls[0]["id"] for _ in range(2)]
        assert ids == ["call_0_0", "call_1_0"] and srv.requests == [] and srv.served == 2
    assert reply["tool_calls"][0] == {"type": "function", "function": {"name": "get_reservation", "arguments": "{}"}}


def test_example_of_schema():
    assert example_of({"type": "object", "properties": {"a": {"type": ["null", "array"]}, "b": {"const": 3}}}) \
        == {"a": [], "b": 3}


# ---------------------------------------------------------------- local models


def test_parse_output_tool_calls_and_json():
    from runtime.backends.hf_backend import parse_output

    text = 'Let me look.<tool_call>{"name": "get_reservation", "arguments": {"reservation_id": "AB"}}</tool_call>'
    m = parse_output(text, ROOT_TOOLS)
    assert m["content"] == "Let me look." and m["tool_calls"][0]["function"] == {
        "name": "get_reservation", "arguments": '{"reservation_id": "AB"}'}
    assert parse_output(text, ROOT_TOOLS) == m  # ids depend on the text only
    bare = parse_output('```json\n{"name": "nope", "parameters": {"x": 1}}\n```', ROOT_TOOLS)
    assert bare["content"] is None and bare["tool_calls"][0]["function"]["name"] == "nope"
    assert parse_output('{"name": "x"}', None) == {"role": "assistant", "content": '{"name": "x"}'}
    assert parse_output('```json\n{"a": 1}\n```', None, {"type": "json_object"})["content"] == '{"a": 1}'
    assert "tool_calls" not in parse_output("<tool_call>not json</tool_call>", ROOT_TOOLS)


def test_plain_prompt_renders_tools_and_calls():
    from runtime.backends.hf_backend import render_prompt

    class NoTemplate:
        chat_template = None

    history = HELLO + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_reservation", "arguments": '{"count": 2}'}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_reservation", "content": "ok"}]
    prompt = render_prompt(history, ROOT_TOOLS, NoTemplate())
    assert prompt.startswith("<|system|>\nYou are helpful.\n\nYou can call these tools.")
    assert '<tool_call>{"arguments": {"count": 2}, "name": "get_reservation"}</tool_call>' in prompt
    assert "[get_reservation] ok" in prompt and prompt.endswith("<|assistant|>\n")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-model")
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["<|system|> <|user|> <|assistant|> hello there you are helpful",
                             '<tool_call> { "name": "get_reservation", "arguments": {} } </tool_call>'],
                            trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<eos>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(0)  # the test's own model weights
    config = GPT2Config(vocab_size=len(fast), n_positions=512, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def test_hf_backend_produces_a_completion(tiny_model):
    b = make_backend("hf", model=tiny_model, request_timeout=30)
    c = run_sync(b.complete(HELLO, ROOT_TOOLS, agent="Dialog", max_tokens=6))
    assert c.ok and c.message["role"] == "assistant" and c.attempts == 1
    assert c.usage.completion_tokens == 6 and c.usage.prompt_tokens > 6
    assert c.finish_reason in ("length", "tool_calls")
    again = run_sync(b.complete(HELLO, ROOT_TOOLS, max_tokens=6))
    assert again.message == c.message  # greedy: the same prompt gives the same answer
    sampled = [run_sync(b.complete(HELLO, max_tokens=6, temperature=1.0, seed=s)).message for s in (1, 1)]
    assert sampled[0] == sampled[1]
    assert b.ledger.by_agent()["Dialog"].completion_tokens == 6


def test_hf_backend_bad_model_path_is_a_recorded_error(tmp_path):
    c = run_sync(make_backend("hf", model=str(tmp_path / "missing")).complete(HELLO))
    assert not c.ok and c.attempts == 1 and c.error


def test_vllm_needs_the_gpu_extra():
    from runtime.backends.vllm_backend import sampling_options

    assert sampling_options(None, None, None, 64) == {"temperature": 0.0, "max_tokens": 64}
    assert sampling_options(0.7, 10, 3, 64) == {"temperature": 0.7, "max_tokens": 10, "seed": 3}
    try:
        import vllm  # noqa: F401  (only whether it imports)
    except ImportError:
        with pytest.raises(BackendUnavailable, match="gpu extra"):
            make_backend("vllm", model="some/model")
    else:
        pytest.skip("vllm is installed: the engine itself is exercised on GPU machines")
