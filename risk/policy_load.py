"""Read policy YAML and report every problem at once with file, line, column and field path.

YAML is read with ruamel (YAML 1.2: ``no`` stays a string, ``0x10`` is refused for an address because
it is not quoted), keeping each node's position so that a pydantic error's field path can be turned
back into ``policy.yaml:12:5``. Whatever the bytes, checking reports problems and never raises: odd
YAML (custom tags, ``!!binary``, ``!!set``, merge keys, alias bombs) becomes a problem with its line.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import json
import warnings
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning
from ruamel.yaml.scalarbool import ScalarBoolean

import risk.policy
from risk.errors import PolicyError
from risk.policy import Policy

M = TypeVar("M", bound=BaseModel)


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


# A policy has a few hundred values; far more means aliases nested to expand exponentially.
MAX_VALUES = 100_000


def _key_text(key: Any) -> str:
    """A mapping key as JSON (and so pydantic's error path) will spell it."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (bool, ScalarBoolean)):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return repr(float(key))
    return str(key)


class _TooLarge(Exception):
    pass


@dataclass
class _Plain:
    """ruamel's nodes → plain JSON-able values (pydantic strict wants real dicts, lists, bools).

    Values with no JSON form are replaced by None and listed in `unsupported` with their path, so
    the rest of the file is still checked and the person gets one clear message for each.
    """

    unsupported: list[tuple[tuple[Any, ...], str]]
    seen: int = 0

    def convert(self, node: Any, path: tuple[Any, ...], active: frozenset[int]) -> Any:
        self.seen += 1
        if self.seen > MAX_VALUES:
            raise _TooLarge
        if isinstance(node, (dict, list, tuple)) and id(node) in active:
            self.unsupported.append((path, "refers to itself through an alias; write the value out"))
            return None
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            inner = active | {id(node)}
            for k, v in node.items():
                text = _key_text(k)
                if text in out:
                    self.unsupported.append((path + (text,), f"key {text!r} appears twice (as different YAML types)"))
                    continue
                out[text] = self.convert(v, path + (text,), inner)
            return out
        if isinstance(node, (list, tuple)):
            inner = active | {id(node)}
            return [self.convert(v, path + (i,), inner) for i, v in enumerate(node)]
        if isinstance(node, (bool, ScalarBoolean)):
            return bool(node)  # an anchored `true` is a ScalarBoolean, an int: it would pass as 1
        if isinstance(node, str):
            return str(node)  # ScalarString subclasses → str
        if node is None or isinstance(node, (int, float)):
            return node
        if isinstance(node, (dt.date, dt.datetime)):
            return node.isoformat()
        tag = getattr(getattr(node, "tag", None), "value", None) or getattr(node, "tag", None)
        if isinstance(node, (bytes, bytearray)):
            what = "binary data (!!binary) is not supported"
        elif isinstance(node, AbstractSet):
            what = "a set (!!set) is not supported; use a list"
        elif isinstance(tag, str):
            what = f"the YAML tag {tag} is not supported; remove it"
        else:
            what = f"a YAML {type(node).__name__} is not supported"
        self.unsupported.append((path, what))
        return None


def _is_label(part: Any) -> bool:
    # pydantic's union-branch and validator labels ("function-plain[...]", our "[file]" tags)
    return isinstance(part, str) and ("[" in part or "function-" in part)


def _child(node: Any, key: Any) -> tuple[Any, tuple[int, int] | None] | None:
    """The child of a YAML node at `key` (a path part) and the position of its key, if known."""
    if isinstance(node, CommentedMap) and isinstance(key, str):
        for k in node:
            if _key_text(k) == key:
                return node[k], _key_position(node, k)
        return None
    if isinstance(node, (CommentedSeq, list, tuple)) and isinstance(key, int) and 0 <= key < len(node):
        recorded = (getattr(node.lc, "data", None) or {}) if isinstance(node, CommentedSeq) else {}
        pos = tuple(recorded[key][:2]) if key in recorded else None  # else keep the parent's position
        return node[key], pos  # type: ignore[return-value]
    return None


def _key_position(node: CommentedMap, key: Any) -> tuple[int, int] | None:
    recorded = getattr(node.lc, "data", None) or {}  # key -> [line, col, value line, value col]
    if key in recorded:
        line, col = recorded[key][:2]
        return line, col
    # A key brought in by a merge (<<: *anchor) has no position in this map: look in the merged ones.
    for merged in getattr(node, "merge", None) or ():
        source = merged[1] if isinstance(merged, tuple) else merged
        if isinstance(source, CommentedMap) and key in source:
            return _key_position(source, key)
    return None


def _position(root: Any, loc: tuple[Any, ...]) -> tuple[int, int]:
    """Line and column (1-based) of the deepest node of `loc` that exists in the YAML tree."""
    node, line, col = root, 0, 0
    for key in loc:
        if _is_label(key):
            continue
        found = _child(node, key)
        if found is None:
            break
        node, pos = found
        if pos is not None:
            line, col = pos
    return line + 1, col + 1


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_label(part):
            continue  # pydantic's union-branch labels are noise for a person
        else:
            out += f".{part}" if out else str(part)
    return out


@functools.cache
def _field_names() -> tuple[str, ...]:
    models = [m for m in vars(risk.policy).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    return tuple(sorted({name for m in models for name in m.model_fields}))


def _message(err: dict[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.8)
        if close:
            return f"unknown field; did you mean {close[0]!r}?"
        return "unknown field (typo?); remove it or check the spelling against policies/schema.json"
    if kind == "missing":
        return "required field is missing"
    return msg.removeprefix("Value error, ")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _yaml_problems(name: str, exc: YAMLError, text: str) -> list[Problem]:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            what = exc.problem or exc.context or "invalid YAML"
            return [Problem(name, mark.line + 1, mark.column + 1, "", f"YAML syntax: {_one_line(what)}")]
    position = getattr(exc, "position", None)  # the reader's errors (control characters) give an offset
    if isinstance(position, int) and 0 <= position <= len(text):
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(exc, "reason", None) or "unacceptable character"
        return [Problem(name, line, column, "", f"YAML: {_one_line(reason)} (character {getattr(exc, 'character', '?')!r})")]
    return [Problem(name, 1, 1, "", f"YAML: {_one_line(exc)}")]


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


def check_model_text(
    text: bytes, name: str, model: type[M], *, what: str, message: Callable[[dict[str, Any]], str] | None = None
) -> tuple[M | None, list[Problem]]:
    """Parse YAML and validate it against `model`; returns it or every problem (never raises for bad input).

    Shared by every kind of policy file (venue policies, breaker policies): the YAML guards, the
    positions of errors and their wording are the same for all. `what` describes the expected root
    ("a policy is a YAML mapping (venue:, markets:, ...)"), `message` words one pydantic error.
    """
    message = message or _message
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, 1, 1, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            # A reused anchor is legal YAML (the later one wins); ruamel's warning would print a
            # multi-line note in the middle of `steward validate`'s output.
            warnings.simplefilter("ignore", YAMLWarning)
            root = yaml.load(decoded)
    except YAMLError as exc:
        return None, _yaml_problems(name, exc, decoded)
    except Exception as exc:  # noqa: BLE001 - ruamel raises a few non-YAMLError types on odd input
        return None, [Problem(name, 1, 1, "", f"YAML could not be read: {_one_line(exc)}")]
    if not isinstance(root, CommentedMap):
        return None, [Problem(name, 1, 1, "", what)]
    plain = _Plain(unsupported=[])
    try:
        data = plain.convert(root, (), frozenset())
    except _TooLarge:
        return None, [Problem(name, 1, 1, "", f"the YAML expands to more than {MAX_VALUES} values (aliases nested too deep?)")]
    bad = [(_position(root, path), _field_path(path), what) for path, what in plain.unsupported]
    early = [Problem(name, line, col, field, what) for (line, col), field, what in bad]
    try:
        # JSON mode: strict about numbers and types, yet enums and tuples come from plain YAML text.
        validated = model.model_validate_json(json.dumps(data, allow_nan=True))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = []
        for err in errors:
            loc = tuple(err["loc"])
            line, col = _position(root, loc)
            problems.append(Problem(name, line, col, _field_path(loc), message(err)))
        kept = _dedupe(_drop_consequential(errors, problems))
        # A value already reported as unsupported was replaced by None: its "invalid type" is noise.
        kept = [p for p in kept if not any(_within(p.field, field) for _, field, _ in bad)]
        return None, sorted(early + kept, key=lambda p: (p.line, p.column))
    if early:
        return None, early
    return validated, []


def check_policy_text(text: bytes, name: str) -> tuple[Policy | None, list[Problem]]:
    """Parse and validate a venue policy; returns it or every problem found (never raises for bad input)."""
    return check_model_text(text, name, Policy, what="a policy is a YAML mapping (venue:, markets:, ...)")


def _within(field: str, prefix: str) -> bool:
    return field == prefix or field.startswith((prefix + ".", prefix + "["))


def load_policy(path: Path, display_name: str | None = None) -> LoadedPolicy:
    """Load one policy or raise PolicyError listing every problem with its line."""
    name = display_name or str(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file {name} not found", "check the path (policies live in policies/)") from None
    except IsADirectoryError:
        raise PolicyError(f"{name} is a directory, not a policy file", "name a .yaml file") from None
    except OSError as exc:
        raise PolicyError(f"policy file {name} cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    policy, problems = check_policy_text(text, name)
    if policy is None:
        raise PolicyError(
            f"{name}: {len(problems)} problem(s) in the policy",
            "fix each line listed; `steward validate` lists them all",
            tuple(str(p) for p in problems),
        )
    return LoadedPolicy(policy=policy, path=path, text=text)
