"""A --config file (YAML or JSON): read, and every setting checked against the type
SearchConfig (and, for its ``ppo:`` section, PPOConfig) declares, before anything runs: one
error naming the file, the setting, the value and what was expected."""

from __future__ import annotations

import contextlib
import difflib
import json
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from nas.config import SearchConfig


class ConfigError(ValueError):
    """A config file that cannot be read or holds a setting of the wrong name or type."""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A --config file: YAML or JSON mapping of SearchConfig fields (dashes or underscores)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    if isinstance(data.get("ppo"), dict):
        data["ppo"] = {k.replace("-", "_"): v for k, v in data["ppo"].items()}
    return data


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a config file's ``value`` fits a SearchConfig annotation ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:  # a resolution: "96x128" or [96, 128], read by parse_resolution
        return isinstance(value, (str, list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    return True


_EXAMPLES = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}


def _expected(hint: Any) -> str:
    args = [h for h in typing.get_args(hint) if h is not type(None)]
    if args and len(args) < len(typing.get_args(hint)):
        return f"{_expected(args[0])} (or null)"
    if typing.get_origin(hint) is tuple:
        return "HxW, e.g. 96x128"
    if typing.get_origin(hint) is dict:
        return "a mapping"
    return _EXAMPLES.get(hint, str(hint))


def check_types(data: dict[str, Any], source: str) -> None:
    """Every known setting in ``data`` has the type SearchConfig declares (the ppo section's
    those of PPOConfig); ConfigError naming ``source``, the field, the value and the type.
    A number written as text for a float setting (YAML's 3e-3) becomes that float."""
    _refuse_unknown(data, {f.name for f in fields(SearchConfig)}, f"{source}: unknown settings")
    checks = [(data, typing.get_type_hints(SearchConfig), "")]
    if isinstance(data.get("ppo"), dict):
        from controllers.ppo import PPOConfig

        ppo_known = {f.name for f in fields(PPOConfig)}
        _refuse_unknown(data["ppo"], ppo_known, f"{source}: unknown ppo settings")
        checks.append((data["ppo"], typing.get_type_hints(PPOConfig), "ppo."))
    for values, hints, prefix in checks:
        for name, value in list(values.items()):
            hint = hints[name]
            if isinstance(value, str) and float in (hint, *typing.get_args(hint)):
                with contextlib.suppress(ValueError):  # PyYAML reads 3e-3 (no dot) as text
                    values[name] = value = float(value)
            if not _type_ok(value, hints[name]):
                raise ConfigError(
                    f"{source}: {prefix}{name} is {value!r}, which is not {_expected(hints[name])}"
                )


def _refuse_unknown(values: dict, known: set[str], what: str) -> None:
    """ConfigError listing the names not in ``known``, with the known name each is closest to
    (a typo's likely fix) and every known name."""
    unknown = sorted(set(values) - known)
    if not unknown:
        return
    close = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
    meant = [f"{name} -> {match[0]}" for name, match in close.items() if match]
    hint = f" (did you mean: {', '.join(meant)}?)" if meant else ""
    raise ConfigError(f"{what} {unknown}{hint}; known: {sorted(known)}")


def read_config_file(path: str) -> dict[str, Any]:
    """A --config file's settings, or one ConfigError naming the file and its problem."""
    try:
        data = load_config_file(path)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a text file (YAML or JSON)") from None
    except ValueError as exc:  # not a mapping
        raise ConfigError(str(exc)) from None
    except Exception as exc:  # yaml.YAMLError: yaml is imported only for .yaml files
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if type(exc).__module__.startswith("yaml"):
            raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None
        raise
    check_types(data, f"config file {path}")
    return data
