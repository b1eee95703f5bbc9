"""Runs every ```python block of README.md as written, each on its own.

A block runs in a fresh namespace (it brings its own imports), in a
temporary working folder, one pytest item per block, named after the
heading above it and its place under that heading (`-k first_example`).
```bash and other blocks are not run. An HTML comment on the line before a
block changes how it runs:

- `<!-- skip-test: why -->` skips it (a block that needs files the user
  downloads, or several processes);
- `<!-- test-backends: jax, tensorflow -->` runs it on those backends
  only, and skips it on the others.
"""

import builtins
import dataclasses
import os
import re
import traceback

import keras
import pytest

BACKEND = keras.backend.backend()
README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")
FENCE = re.compile(r"^```(?P<language>\S*)[ \t]*$")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
COMMENT = re.compile(r"^<!--\s*(?P<key>[\w-]+)\s*:\s*(?P<value>.*?)\s*-->$")


@dataclasses.dataclass
class Block:
    """A ```python block of the README: where it is and how it runs."""

    id: str
    line: int  # 1-based line of its first line of code
    source: str
    options: dict


def _slug(title):
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "top"


def _blocks(path=README):
    """The README's python blocks, in order."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, heading, count, index = [], "top", {}, 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence is None:
            match = HEADING.match(line)
            if match:
                heading = _slug(match.group("title"))
            index += 1
            continue
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if fence.group("language") == "python":
            options = {}
            before = index - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            comment = (
                COMMENT.match(lines[before].strip()) if before >= 0 else None
            )
            if comment:
                options[comment.group("key")] = comment.group("value")
            count[heading] = count.get(heading, 0) + 1
            blocks.append(
                Block(
                    id=f"{heading}_{count[heading]}",
                    line=index + 2,
                    source="\n".join(lines[index + 1 : end]) + "\n",
                    options=options,
                )
            )
        index = end + 1
    return blocks


BLOCKS = _blocks()


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 3, "README.md's ```python blocks were not found"


def test_comments_are_known():
    for block in BLOCKS:
        unknown = set(block.options) - {"skip-test", "test-backends"}
        assert not unknown, f"README.md:{block.line - 1}: unknown {unknown}"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_block(block, tmp_path, monkeypatch):
    if "skip-test" in block.options:
        pytest.skip(f"README.md:{block.line}: {block.options['skip-test']}")
    backends = block.options.get("test-backends")
    if backends is not None:
        if BACKEND not in re.split(r"[\s,]+", backends.strip()):
            pytest.skip(f"README.md:{block.line} runs on {backends} only")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_example", "__builtins__": builtins}
    # Padded so that a traceback names the README's line.
    code = "\n" * (block.line - 1) + block.source
    try:
        exec(compile(code, README, "exec"), namespace)
    except Exception as exception:
        error = "".join(
            traceback.format_exception(
                type(exception), exception, exception.__traceback__.tb_next
            )
        )
    else:
        error = None
    finally:
        if BACKEND == "jax":  # `data_parallel` leaves its distribution set
            keras.distribution.set_distribution(None)
    if error:
        pytest.fail(
            f"README.md:{block.line} ({block.id}) raised:\n{error}",
            pytrace=False,
        )


def test_blocks_are_parsed_with_their_headings_and_comments(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n```python\nx = 1\n```\n\n## A first run\n\n"
        "```bash\nls\n```\n\n<!-- skip-test: needs files -->\n"
        "```python\ny = 2\n```\n\n<!-- test-backends: jax -->\n\n"
        "```python\nz = 3\n```\n"
    )
    blocks = _blocks(str(readme))
    assert [b.id for b in blocks] == [
        "title_1",
        "a_first_run_1",
        "a_first_run_2",
    ]
    assert [b.line for b in blocks] == [4, 15, 21]
    assert [b.source for b in blocks] == ["x = 1\n", "y = 2\n", "z = 3\n"]
    assert blocks[0].options == {}
    assert blocks[1].options == {"skip-test": "needs files"}
    assert blocks[2].options == {"test-backends": "jax"}
