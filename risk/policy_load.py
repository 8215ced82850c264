"""Read policy YAML and report every problem at once with file, line, column and field path.

YAML is read with ruamel (YAML 1.2: ``no`` stays a string, ``0x10`` is refused for an address because
it is not quoted), keeping each node's position so that a pydantic error's field path can be turned
back into ``policy.yaml:12:5``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from risk.errors import PolicyError
from risk.policy import Policy


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    policy: Policy
    path: Path
    text: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


def _plain(node: Any) -> Any:
    """ruamel's commented containers → plain dicts and lists (pydantic strict wants real ones)."""
    if isinstance(node, CommentedMap):
        return {str(k) if not isinstance(k, (str, int)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)  # ScalarString subclasses → str
    return node


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"YAML value {value!r} of type {type(value).__name__} has no JSON form")


def _position(root: Any, loc: tuple[Any, ...]) -> tuple[int, int]:
    """Line and column (1-based) of the deepest node of `loc` that exists in the YAML tree."""
    node, line, col = root, 0, 0
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            node = node[key]
        else:
            break
    return line + 1, col + 1


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or "function-" in str(part):
            continue  # pydantic's union-branch labels are noise for a person
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown field (typo?); remove it or check the spelling against policies/schema.json"
    if kind == "missing":
        return "required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def _yaml_problems(name: str, exc: YAMLError) -> list[Problem]:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return [Problem(name, mark.line + 1, mark.column + 1, "", f"YAML syntax: {exc.problem}")]
    return [Problem(name, 1, 1, "", f"YAML: {exc}")]


def _drop_consequential(errors: list[dict[str, Any]], problems: list[Problem]) -> list[Problem]:
    """A list whose only item failed also reports 'too short'; that second message is noise."""
    out = []
    for err, problem in zip(errors, problems, strict=True):
        nested = any(q.field.startswith(problem.field + "[") for q in problems if q is not problem)
        if err["type"] == "too_short" and nested:
            continue
        out.append(problem)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """A union field fails once per branch; a person needs each message once per place."""
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for p in problems:
        key = (p.line, p.column, p.field, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def check_policy_text(text: bytes, name: str) -> tuple[Policy | None, list[Problem]]:
    """Parse and validate; returns the policy or every problem found (never raises for bad input)."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(decoded)
    except YAMLError as exc:
        return None, _yaml_problems(name, exc)
    except Exception as exc:  # ruamel raises a few non-YAMLError types on odd input
        return None, [Problem(name, 1, 1, "", f"YAML could not be read: {exc}")]
    if not isinstance(root, CommentedMap):
        return None, [Problem(name, 1, 1, "", "a policy is a YAML mapping (venue:, markets:, ...)")]
    try:
        # JSON mode: strict about numbers and types, yet enums and tuples come from plain YAML text.
        as_json = json.dumps(_plain(root), default=_json_default)
        return Policy.model_validate_json(as_json), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line, col = _position(root, loc)
            problems.append(Problem(name, line, col, _field_path(loc), _message(err)))
        return None, _dedupe(_drop_consequential(exc.errors(include_url=False), problems))


def load_policy(path: Path, display_name: str | None = None) -> LoadedPolicy:
    """Load one policy or raise PolicyError listing every problem with its line."""
    name = display_name or str(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file {name} not found", "check the path (policies live in policies/)") from None
    except IsADirectoryError:
        raise PolicyError(f"{name} is a directory, not a policy file", "name a .yaml file") from None
    policy, problems = check_policy_text(text, name)
    if policy is None:
        raise PolicyError(
            f"{name}: {len(problems)} problem(s) in the policy",
            "fix each line listed; `steward validate` lists them all",
            tuple(str(p) for p in problems),
        )
    return LoadedPolicy(policy=policy, path=path, text=text)
