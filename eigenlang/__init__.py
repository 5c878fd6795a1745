"""eigenlang — the language: programs, diagnostics, the staged compiler.

    from eigenlang import check_file, compile_workflow, load_domain

    diags = check_file("workflows/eigendata.yaml")      # every diagnostic, sorted
    plan, diags = compile_workflow("workflows/eigendata.yaml")
    domain, diags = load_domain("airline")              # a name, a folder, or a domain.yaml
"""

from .compiler import Plan, check_file, compile_workflow
from .diagnostics import Diagnostic, Diagnostics, Span
from .domain import DomainSpec, ToolSpec, load_domain

__all__ = ["Plan", "check_file", "compile_workflow", "Diagnostic", "Diagnostics", "Span",
           "DomainSpec", "ToolSpec", "load_domain"]
__version__ = "0.1.0"
