"""LLM-backed workers (any backend of `runtime.backends`): render a prompt, ask, parse.

    from runtime.workers.llm.workers import llm_workers
    workers = llm_workers("openai", base_url=..., model=..., prompt_dirs=(...,))

Nothing is imported here, so that `runtime.workers.registry` stays cheap to import.
"""
