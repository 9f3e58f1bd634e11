"""Prompt templates (markdown) served as MCP prompts.

Each file's first line is `# Title`; the second paragraph is its description; the
rest is the template, with `{name}` placeholders for the prompt's arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    title: str
    description: str
    body: str

    @property
    def arguments(self) -> list[str]:
        return sorted(set(re.findall(r"\{([a-z_]+)\}", self.body)))

    def render(self, **values: str) -> str:
        missing = [a for a in self.arguments if a not in values]
        if missing:
            raise ValueError(f"prompt {self.name} needs: {', '.join(missing)}")
        return self.body.format(**values)


def load_all() -> list[PromptTemplate]:
    out = []
    for path in sorted(HERE.glob("*.md")):
        title, description, body = path.read_text().split("\n\n", 2)
        out.append(
            PromptTemplate(
                name=path.stem,
                title=title.lstrip("# ").strip(),
                description=description.strip(),
                body=body.strip(),
            )
        )
    return out
