"""The in-silico seed page (``seed_page_insilico.txt``) and its Python snippets, restored to runnable code.

``seed_page_insilico.txt`` holds the headings and code lines of the published page
``/work/shared/seeds/003_6556e858e69491cf.txt`` exactly as published (its prose is left out): the snippets are a
public contract. The page lost its code indentation when it was flattened to text, so
:func:`reindent` restores it; nothing else in a snippet is changed. Test modules load this file with
``runpy.run_path`` (tests are not a package under the importlib import mode).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

SEED_PAGE = Path(__file__).resolve().with_name("seed_page_insilico.txt")


def reindent(lines: list[str]) -> str:
    """Python source from code lines that lost their indentation; raises SyntaxError if they are not code.

    A logical line ending in ``:`` opens a block (the following lines go one level deeper); a ``return``
    statement goes at its function's body level and closes the function. Which block a later statement belongs
    to is otherwise ambiguous in flattened text; it stays in the innermost open one.
    """
    source = "\n".join(lines) + "\n"
    physical = source.splitlines()
    logical: list[list[tokenize.TokenInfo]] = []
    current: list[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            if current:
                logical.append(current)
            current = []
        elif token.type not in (tokenize.INDENT, tokenize.DEDENT):
            current.append(token)
    level, function_levels = 0, list[int]()
    for tokens in logical:
        code = [token.string for token in tokens if token.type != tokenize.COMMENT]
        returns = bool(code) and code[0] == "return" and bool(function_levels)
        line_level = function_levels[-1] + 1 if returns else level
        for row in range(tokens[0].start[0], tokens[-1].end[0] + 1):
            physical[row - 1] = "    " * line_level + physical[row - 1]
        if code and code[-1] == ":":
            if code[0] == "def":
                function_levels.append(line_level)
            level = line_level + 1
        elif returns:
            level = function_levels.pop()
    text = "\n".join(physical) + "\n"
    ast.parse(text)
    return text


def snippet_after(heading: str) -> str:
    """The code block after ``heading`` on the seed page: the longest run of lines, from the first import line
    after the heading, that is valid Python once re-indented (the prose after a block is not)."""
    lines = SEED_PAGE.read_text().splitlines()
    start = next(i for i in range(lines.index(heading), len(lines)) if lines[i].startswith(("import ", "from ")))
    snippet = None
    for end in range(start + 1, len(lines) + 1):
        try:
            snippet = reindent(lines[start:end])
        except (SyntaxError, tokenize.TokenError):
            continue
    if snippet is None:
        raise ValueError(f"{SEED_PAGE}: no Python code after the heading {heading!r}")
    return snippet


def with_frames(snippet: str, frames: int) -> str:
    """``snippet`` asking for ``frames`` time steps instead of the page's 30 (exactly one place changes)."""
    if snippet.count("time_steps=30") != 1:
        raise ValueError(f"expected one 'time_steps=30' in the snippet, found {snippet.count('time_steps=30')}")
    return snippet.replace("time_steps=30", f"time_steps={frames}")


def optimisation_snippet() -> str:
    """The page's stimulus-optimisation snippet (30 frames, as published)."""
    return snippet_after("Stimulus Optimization")


def custom_experiment_snippet() -> str:
    """The page's custom-experiment snippet (30 frames, as published)."""
    return snippet_after("Implementing Custom Experiments")
