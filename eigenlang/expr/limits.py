"""The bounds that keep every expression cheap, whoever wrote it (a user or an LLM planner).

Static bounds are checked by the parser (before lark sees deeply nested text, so no
`RecursionError` can happen anywhere later); dynamic bounds by the interpreter, which raises
`EvalError` when one is crossed. Every value that can grow is sized before it is built
(`'a' * n`, `xs + ys`, `upper()`, `str()` of a list that repeats one big part), never
measured afterwards; the checker evaluates the parts that read no names, so a program whose
constant parts cross a bound is refused before it runs (E006).
"""

MAX_SOURCE_CHARS = 10_000   # length of an expression's text
MAX_DEPTH = 100             # nesting of brackets in the text, and height of the AST
MAX_INT_DIGITS = 78         # digits of an integer literal (2**256 has 78)
MAX_INT_BITS = 256          # |int| < 2**256 for every integer computed
MAX_SIZE = 1_000_000        # characters of a string (str(): of its text) / items of a list computed
DEFAULT_BUDGET = 100_000    # node evaluations per call
BULK_ITEMS_PER_STEP = 64    # C-speed bulk work (copy, scan, compare) costs 1 step per 64 items
