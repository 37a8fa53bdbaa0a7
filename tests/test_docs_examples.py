"""Every fenced ``python`` block of README.md and docs/**/*.md runs as written.

Each page runs once, in a subprocess with a fresh temporary working directory: its blocks
run in order in one namespace (a page may build on its earlier blocks), as
``__name__ == "__main__"``, and each block is then one test item here (passed, failed with
its traceback, or skipped). Two HTML comments on the line before a block change that
(documented in docs/contributing.md):

- ``<!-- docs-test: fragment -->``: the block is an excerpt that cannot run alone; it is
  skipped and counted as skipped.
- ``<!-- docs-test: slurm -->``: the block needs a SLURM cluster; it runs when the
  ``slurm`` fixture's conditions hold (``sinfo`` answers), else it is reported as skipped.

``pycon`` blocks are doctests (pytest's ``--doctest-glob=*.md``) and are not run here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(\w+)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)(.*)$")
KINDS = ("fragment", "slurm")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository root
    line: int  # 1-based line of the block's first code line
    code: str
    marker: str | None  # "fragment", "slurm" or None


def pages() -> list[str]:
    """README.md and every Markdown page under docs/, relative to the repository root."""
    found = ["README.md"]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files
                  if f.endswith(".md")]
    return sorted(found)


def python_blocks(text: str, page: str) -> list[Block]:
    """The fenced blocks whose language is ``python``, with the marker before each."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match.group(1), match.group(2), match.group(3)
        before = lines[i - 1] if i > 0 else ""
        marker = MARKER.match(before)
        if marker and marker.group(1) not in KINDS:
            raise ValueError(f"{page}:{i}: unknown docs-test marker {marker.group(1)!r}; "
                             f"known: {KINDS}")
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence[0] * len(fence)):
            end += 1
        if lang == "python":
            body = [line[len(indent):] if line.startswith(indent) else line
                    for line in lines[i + 1:end]]
            if body and body[0].startswith(">>>"):
                raise ValueError(f"{page}:{i + 1}: a ```python block written as a doctest; "
                                 f"fence it as ```pycon")
            blocks.append(Block(page, i + 2, "\n".join(body) + "\n",
                                marker.group(1) if marker else None))
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    found = []
    for page in pages():
        with open(os.path.join(ROOT, page), encoding="utf-8") as fh:
            found += python_blocks(fh.read(), page)
    return found


#: Runs one page's blocks; its results (one JSON object per block) go to argv[2].
DRIVER = r'''
import json, sys, traceback
if __name__ == "__main__":
    blocks, out = json.load(open(sys.argv[1])), sys.argv[2]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    results = []
    for b in blocks:
        if b["run"]:
            try:
                # padded so tracebacks name the page and its line numbers
                exec(compile("\n" * (b["line"] - 1) + b["code"], b["path"], "exec"), namespace)
                results.append({"status": "passed"})
            except BaseException:
                results.append({"status": "failed", "error": traceback.format_exc()})
        else:
            results.append({"status": "skipped"})
        with open(out, "w") as fh:
            json.dump(results, fh)
'''

_page_results: dict[str, list[dict]] = {}


def _slurm_usable(request) -> bool:
    try:
        request.getfixturevalue("slurm")
    except pytest.skip.Exception:
        return False
    return True


def _run_page(page: str, request, tmp_path_factory) -> list[dict]:
    if page in _page_results:
        return _page_results[page]
    slurm = any(b.marker == "slurm" for b in BLOCKS if b.page == page) and _slurm_usable(request)
    cwd = tmp_path_factory.mktemp(re.sub(r"\W", "_", page))
    blocks = [{"path": os.path.join(ROOT, b.page), "line": b.line, "code": b.code,
               "run": b.marker is None or (b.marker == "slurm" and slurm)}
              for b in BLOCKS if b.page == page]
    (cwd / "blocks.json").write_text(json.dumps(blocks))
    (cwd / "_driver.py").write_text(DRIVER)
    out = cwd / "results.json"
    proc = subprocess.run([sys.executable, "_driver.py", "blocks.json", str(out)], cwd=cwd,
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONPATH": ROOT})
    results = json.loads(out.read_text()) if out.exists() else []
    tail = f"\n--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    while len(results) < len(blocks):  # the page's process died at this block
        results.append({"status": "failed", "error": f"exit code {proc.returncode}{tail}"})
    _page_results[page] = results
    return results


BLOCKS = all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.page}:{b.line}" for b in BLOCKS])
def test_docs_python_block_runs(block, request, tmp_path_factory):
    if block.marker == "fragment":
        pytest.skip(f"marked as a fragment: {block.page}:{block.line}")
    if block.marker == "slurm":
        request.getfixturevalue("slurm")  # skips (or fails with REQUIRE_SLURM=1) without one
    position = [b for b in BLOCKS if b.page == block.page].index(block)
    result = _run_page(block.page, request, tmp_path_factory)[position]
    assert result["status"] == "passed", result.get("error")


def test_blocks_are_found_with_their_markers():
    text = ("intro\n\n```python\nx = 1\n```\n\n<!-- docs-test: fragment -->\n```python\n"
            "y = x +\n```\n\n```bash\nls\n```\n\n- item\n\n    ```python\n    z = 2\n"
            "    ```\n")
    blocks = python_blocks(text, "page.md")
    assert [(b.line, b.code, b.marker) for b in blocks] == [
        (4, "x = 1\n", None), (9, "y = x +\n", "fragment"), (19, "z = 2\n", None)]
    with pytest.raises(ValueError, match="unknown docs-test marker 'fragmnt'"):
        python_blocks("<!-- docs-test: fragmnt -->\n```python\nx\n```\n", "page.md")
    with pytest.raises(ValueError, match="fence it as ```pycon"):
        python_blocks("```python\n>>> 1 + 1\n2\n```\n", "page.md")


def test_every_page_with_python_has_blocks_that_run():
    """Fragments stay the exception: most of the documentation's Python runs."""
    run = [b for b in BLOCKS if b.marker != "fragment"]
    assert len(run) >= 3 * len(BLOCKS) // 4, [f"{b.page}:{b.line}" for b in BLOCKS
                                              if b.marker == "fragment"]
