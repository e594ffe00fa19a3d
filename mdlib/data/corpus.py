"""The corpus format (docs/data.md): one dialogue per line (JSON Lines), validated on load.

A record::

    {"id": str, "domain": str,
     "turns": [{"speaker": "user" | "system", "text": str,
                "acts": [{"act": str, "slot"?: str, "value"?: str | null}]?,
                "state": {...}?, "asr_conf": number?, "asr_acts": [...]?,
                "kb": {"constraints": {slot: value | null}, "results": [row, ...], "count"?: int}?}],
     "meta": {...}?}

``acts``, ``state`` and ``meta`` are optional, so plain-text dialogues grouped by a task
key (``domain``: a domain, a persona, ...) work too. Every problem is reported as one line
``FILE:LINE: field 'turns[3].speaker': expected 'user' or 'system', got 'bot'``.
:func:`load_simdial` reads the original SimDial JSON layout. Introduced in notebook 01.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from mdlib.atomic import atomic_path, parse_json, reading
from mdlib.errors import MdlibError

#: The same rules as :func:`validate_record`, as a JSON Schema (for other tools).
_ACT_SCHEMA = {
    "type": "object",
    "required": ["act"],
    "properties": {"act": {"type": "string"}, "slot": {"type": ["string", "null"]},
                   "value": {"type": ["string", "null"]}},
}
SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mdlib dialogue record",
    "type": "object",
    "required": ["id", "domain", "turns"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "domain": {"type": "string", "minLength": 1},
        "turns": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "required": ["speaker", "text"],
                "properties": {
                    "speaker": {"enum": ["user", "system"]},
                    "text": {"type": "string"},
                    "acts": {"type": "array", "items": _ACT_SCHEMA},
                    "asr_acts": {"type": "array", "items": _ACT_SCHEMA},
                    "state": {"type": "object"},
                    "asr_conf": {"type": "number", "minimum": 0, "maximum": 1},
                    "kb": {
                        "type": "object", "required": ["constraints", "results"],
                        "properties": {
                            "constraints": {"type": "object"},
                            "results": {"type": "array", "items": {"type": "object"}},
                            "count": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
        "meta": {"type": "object"},
    },
}

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def _tname(x: Any) -> str:
    return _TYPE_NAMES.get(type(x), type(x).__name__)


def _short(x: Any) -> str:
    text = json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _acts_errors(acts: Any, where: str) -> list[str]:
    if not isinstance(acts, list):
        return [f"field '{where}': expected a list, got {_tname(acts)}"]
    errors = []
    for j, a in enumerate(acts):
        w = f"{where}[{j}]"
        if not isinstance(a, dict):
            errors.append(f"field '{w}': expected an object, got {_tname(a)}")
        elif not isinstance(a.get("act"), str):
            errors.append(f"field '{w}.act': " + ("missing" if "act" not in a else f"expected a string, got {_short(a['act'])}"))
        else:
            for k in ("slot", "value"):
                if a.get(k) is not None and not isinstance(a[k], str):
                    errors.append(f"field '{w}.{k}': expected a string or null, got {_short(a[k])}")
    return errors


def _kb_errors(kb: Any, where: str) -> list[str]:
    if not isinstance(kb, dict):
        return [f"field '{where}': expected an object, got {_tname(kb)}"]
    cons, results = kb.get("constraints"), kb.get("results")
    if not isinstance(cons, dict):
        return [f"field '{where}.constraints': " + ("missing" if cons is None else f"expected an object, got {_tname(cons)}")]
    if not isinstance(results, list):
        return [f"field '{where}.results': " + ("missing" if results is None else f"expected a list, got {_tname(results)}")]
    for j, row in enumerate(results):
        if not isinstance(row, dict):
            return [f"field '{where}.results[{j}]': expected an object, got {_tname(row)}"]
        for slot, value in cons.items():
            if value is not None and row.get(slot) != value:
                return [f"field '{where}.results[{j}].{slot}': row does not satisfy the constraint "
                        f"{slot}={_short(value)}, got {_short(row.get(slot))}"]
    return []


def validate_record(rec: Any) -> list[str]:
    """Problems with one record, each ``"field 'PATH': expected ..., got ..."`` (empty = valid).

    Besides the shape, checks that every ``kb`` result row satisfies the ``kb`` constraints.
    """
    if not isinstance(rec, dict):
        return [f"record: expected an object, got {_tname(rec)}"]
    errors = []
    for key in ("id", "domain"):
        if key not in rec:
            errors.append(f"field '{key}': missing")
        elif not isinstance(rec[key], str) or not rec[key]:
            errors.append(f"field '{key}': expected a non-empty string, got {_short(rec[key])}")
    if "meta" in rec and not isinstance(rec["meta"], dict):
        errors.append(f"field 'meta': expected an object, got {_tname(rec['meta'])}")
    turns = rec.get("turns")
    if "turns" not in rec:
        return errors + ["field 'turns': missing"]
    if not isinstance(turns, list):
        return errors + [f"field 'turns': expected a list, got {_tname(turns)}"]
    if not turns:
        return errors + ["field 'turns': expected at least one turn, got []"]
    for i, t in enumerate(turns):
        w = f"turns[{i}]"
        if not isinstance(t, dict):
            errors.append(f"field '{w}': expected an object, got {_tname(t)}")
            continue
        sp = t.get("speaker")
        if "speaker" not in t:
            errors.append(f"field '{w}.speaker': missing")
        elif sp not in ("user", "system"):
            errors.append(f"field '{w}.speaker': expected 'user' or 'system', got {_short(sp)}")
        if "text" not in t:
            errors.append(f"field '{w}.text': missing")
        elif not isinstance(t["text"], str):
            errors.append(f"field '{w}.text': expected a string, got {_short(t['text'])}")
        for key in ("acts", "asr_acts"):
            if key in t:
                errors += _acts_errors(t[key], f"{w}.{key}")
        if "state" in t and not isinstance(t["state"], dict):
            errors.append(f"field '{w}.state': expected an object, got {_tname(t['state'])}")
        if "asr_conf" in t:
            c = t["asr_conf"]
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 1:
                errors.append(f"field '{w}.asr_conf': expected a number in [0, 1], got {_short(c)}")
        if "kb" in t:
            errors += _kb_errors(t["kb"], f"{w}.kb")
    return errors


def parse_lines(lines: Iterable[str], source: str = "<input>") -> list[dict]:
    """Parse and validate JSON Lines; blank lines are skipped.

    Raises:
        MdlibError: ``SOURCE:LINE: ...`` for the first bad line (invalid JSON, invalid
            record, repeated id), or when there is no dialogue at all.
    """
    records, seen = [], {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec = parse_json(line, f"{source}:{lineno}", multiline=False)
        errors = validate_record(rec)
        if errors:
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise MdlibError(f"{source}:{lineno}: {errors[0]}{more}")
        if rec["id"] in seen:
            raise MdlibError(f"{source}:{lineno}: field 'id': {rec['id']!r} repeats line {seen[rec['id']]}")
        seen[rec["id"]] = lineno
        records.append(rec)
    if not records:
        raise MdlibError(f"{source}: no dialogues (empty file)")
    return records


def load_corpus(path: str | Path) -> list[dict]:
    """Read and validate a JSON Lines corpus.

    Raises:
        MdlibError: ``FILE:LINE: field 'PATH': problem`` for the first problem, or when the
            file cannot be read (missing, a folder, no permission, not UTF-8, an I/O error).
    """
    with reading(path, "JSON Lines corpus (.jsonl)") as p:
        with open(p, encoding="utf-8") as f:
            return parse_lines(f, str(p))


def dumps(rec: dict) -> str:
    """One record as one JSON line (compact, UTF-8, key order kept).

    Raises:
        MdlibError: the record cannot be written as UTF-8 JSON: a lone surrogate
            character (``"\\ud800"`` in a JSON input decodes to one) or nesting too deep.
    """
    rid = rec.get("id") if isinstance(rec, dict) else None
    try:
        text = json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
    except RecursionError:
        raise MdlibError(f"record {rid!r}: nested too deeply to write") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MdlibError(f"record {rid!r}: holds a lone surrogate character "
                         f"({text[exc.start]!a}), which UTF-8 cannot store") from None
    return text


def write_corpus(records: Iterable[dict], path: str | Path, *, check_ids: bool = True,
                 on_record=None) -> int:
    """Validate and write records one at a time (constant memory), atomically.

    The file appears only when every record was written; on any error (or a kill by
    SIGTERM, see :mod:`mdlib.atomic`) nothing is left behind.

    Args:
        records: any iterable of records (a generator is consumed as it is written).
        check_ids: refuse repeated ids (keeps every id in memory; pass ``False`` when the
            ids are unique by construction, as the generator's are).
        on_record: called with each record after it is written (counters, progress bars).

    Returns:
        The number of records written.

    Raises:
        MdlibError: ``record N (id X): ...`` for an invalid record, an empty corpus, or a
            path that cannot be written.
    """
    path = Path(path)
    seen: set = set()
    n = 0
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for n, rec in enumerate(records, 1):
                errors = validate_record(rec)
                if errors:
                    rid = rec.get("id") if isinstance(rec, dict) else None
                    raise MdlibError(f"record {n} (id {rid!r}): {errors[0]}")
                if check_ids:
                    if rec["id"] in seen:
                        raise MdlibError(f"record {n}: field 'id': {rec['id']!r} repeats an earlier record")
                    seen.add(rec["id"])
                f.write(dumps(rec))
                f.write("\n")
                if on_record is not None:
                    on_record(rec)
        if n == 0:
            raise MdlibError(f"{path}: refusing to write an empty corpus")
    return n


def save_corpus(records: Iterable[dict], path: str | Path) -> Path:
    """Validate every record, then write them as JSON Lines atomically.

    Raises:
        MdlibError: ``record N (id X): ...`` for an invalid record (nothing is written),
            or when the path cannot be written.
    """
    write_corpus(records, path)
    return Path(path)


# ---------------------------------------------------------------- SimDial layout
def _simdial_acts(actions: Any, where: str) -> list[dict]:
    if not isinstance(actions, list):
        raise MdlibError(f"field '{where}': expected a list of actions, got {_tname(actions)}")
    out = []
    for j, a in enumerate(actions):
        if not isinstance(a, dict) or not isinstance(a.get("act"), str):
            raise MdlibError(f"field '{where}[{j}].act': expected an action with a string 'act', got {_short(a)}")
        params = a.get("parameters") or []
        if not isinstance(params, list):
            params = [params]
        pairs: list[tuple[Any, Any]] = []
        for p in params:
            if isinstance(p, dict):
                pairs += list(p.items())
            elif isinstance(p, (list, tuple)) and len(p) == 2:
                pairs.append((p[0], p[1]))
            elif p is not None:
                pairs.append((p, None))
        if not pairs:
            out.append({"act": a["act"]})
        for slot, value in pairs:
            d = {"act": a["act"], "slot": str(slot)}
            if value is not None:
                d["value"] = str(value)
            out.append(d)
    return out


def load_simdial(path: str | Path) -> list[dict]:
    """Read a file made by the original SimDial (``{"dialogs": [[turn, ...]], "meta": {...}}``).

    SimDial turns have ``speaker`` ("SYS" / "USR"), ``utt``, ``actions``
    (``[{"act", "parameters"}]``), ``domain``, and ``state`` / ``conf``. They become records
    of :data:`SCHEMA` (ids ``<file stem>-<index>``; the domain from the turns or from
    ``meta.name``).

    Raises:
        MdlibError: ``FILE: field 'dialogs[3][2].utt': missing`` and the like.
    """
    path = Path(path)
    with reading(path, "SimDial JSON file") as p:
        text = p.read_text(encoding="utf-8")
    data = parse_json(text, str(path))
    try:
        return _convert_simdial(data, path.stem)
    except MdlibError as exc:
        raise MdlibError(f"{path}: {exc}") from None


def _convert_simdial(data: Any, stem: str) -> list[dict]:
    if not isinstance(data, dict):
        raise MdlibError(f"expected a SimDial object {{\"dialogs\": [...], \"meta\": {{...}}}}, got {_tname(data)}")
    if "dialogs" not in data:
        raise MdlibError("field 'dialogs': missing (not a SimDial file?)")
    dialogs = data["dialogs"]
    if not isinstance(dialogs, list) or not dialogs:
        raise MdlibError(f"field 'dialogs': expected a non-empty list of dialogues, got {_short(dialogs)}")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    default_domain = meta.get("name") if isinstance(meta.get("name"), str) else None
    records = []
    for i, dialog in enumerate(dialogs):
        w = f"dialogs[{i}]"
        if not isinstance(dialog, list) or not dialog:
            raise MdlibError(f"field '{w}': expected a non-empty list of turns, got {_short(dialog)}")
        turns, domain = [], None
        for j, t in enumerate(dialog):
            tw = f"{w}[{j}]"
            if not isinstance(t, dict):
                raise MdlibError(f"field '{tw}': expected a turn object, got {_tname(t)}")
            for key in ("speaker", "utt"):
                if key not in t:
                    raise MdlibError(f"field '{tw}.{key}': missing")
            sp = str(t["speaker"]).upper()
            if sp not in ("SYS", "USR"):
                raise MdlibError(f"field '{tw}.speaker': expected 'SYS' or 'USR', got {_short(t['speaker'])}")
            if not isinstance(t["utt"], str):
                raise MdlibError(f"field '{tw}.utt': expected a string, got {_short(t['utt'])}")
            turn: dict = {"speaker": "system" if sp == "SYS" else "user", "text": t["utt"]}
            if "actions" in t:
                turn["acts"] = _simdial_acts(t["actions"], f"{tw}.actions")
            if isinstance(t.get("state"), dict):
                turn["state"] = t["state"]
            if sp == "USR" and isinstance(t.get("conf"), (int, float)) and not isinstance(t["conf"], bool):
                turn["asr_conf"] = round(min(1.0, max(0.0, float(t["conf"]))), 3)
            if isinstance(t.get("domain"), str) and domain is None:
                domain = t["domain"]
            turns.append(turn)
        domain = domain or default_domain
        if not domain:
            raise MdlibError(f"field '{w}[0].domain': missing (and no 'meta.name' to fall back on)")
        records.append({"id": f"{stem}-{i:05d}", "domain": domain, "turns": turns,
                        "meta": {"source": "simdial"}})
    return records
