"""Split strings as HF datasets reads them: "train", "train[:10%]", "train[-50:]", "train[10:20]+test".

Mirrors `datasets/arrow_reader.py` (ReadInstruction) of HF datasets: absolute or percent bounds,
negative bounds counted from the end, bounds clipped to the split size, percents rounded to the
closest row ("(pct1_dropremainder)" rounds to whole 1% blocks), parts joined with "+".
Not included: ReadInstruction objects (pass strings).
"""
import math
import re

_PART = re.compile(
    r"^(?P<split>\w+(?:\.\w+)*)"
    r"(?:\[(?:(?P<from>-?[\d_]+)(?P<from_pct>%)?)?:(?:(?P<to>-?[\d_]+)(?P<to_pct>%)?)?\])?"
    r"(?:\((?P<rounding>[^)]*)\))?$"
)
_FORMS = "'train', 'train[:100]', 'train[10:20]', 'train[:10%]', 'train[-50:]' or 'train+test'"


def parse_split(spec: str) -> list:
    """A split string -> [(split, from, to, unit, rounding)], checked for form only (no sizes needed)."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"split must be a non-empty string like {_FORMS}, got {spec!r}")
    parts = []
    for sub in spec.split("+"):
        m = _PART.match(sub)
        if not m:
            raise ValueError(f"malformed split {spec!r} (at {sub!r}): expected {_FORMS}")
        unit = "%" if m["from_pct"] or m["to_pct"] else "abs"
        lo, hi = (int(m[k]) if m[k] else None for k in ("from", "to"))
        rounding = m["rounding"]
        if rounding is not None and unit != "%":
            raise ValueError(f"malformed split {spec!r}: a rounding mode needs percent bounds")
        if rounding not in (None, "closest", "pct1_dropremainder"):
            raise ValueError(f"malformed split {spec!r}: rounding must be 'closest' or 'pct1_dropremainder'")
        if unit == "%" and any(b is not None and abs(b) > 100 for b in (lo, hi)):
            raise ValueError(f"malformed split {spec!r}: percent bounds must be within [-100, 100]")
        parts.append((m["split"], lo, hi, unit, rounding or "closest"))
    return parts


def resolve_split(parts: list, sizes: dict) -> list:
    """[(split, from, to, ...)] + {split: num_rows} -> [(split, start, stop)] row ranges, as HF computes them."""
    out = []
    for split, lo, hi, unit, rounding in parts:
        if split not in sizes:
            raise ValueError(f"unknown split {split!r}: available splits are {list(sizes)}")
        n = sizes[split]
        if unit == "%":
            if rounding == "pct1_dropremainder" and n < 100:
                raise ValueError(f"'pct1_dropremainder' rounding on split {split!r} of {n} (< 100) rows is always empty")
            if rounding == "pct1_dropremainder":  # whole 1% blocks: -99.5% must give -99%, hence trunc
                to_abs = lambda b: b * math.trunc(n / 100.0)  # noqa: E731
            else:
                to_abs = lambda b: int(round(b * n / 100.0))  # noqa: E731
            lo, hi = (0 if lo is None else to_abs(lo)), (n if hi is None else to_abs(hi))
        else:
            lo, hi = (0 if lo is None else lo), (n if hi is None else hi)
        lo, hi = (max(n + b, 0) if b < 0 else b for b in (lo, hi))
        lo, hi = min(lo, n), min(hi, n)
        out.append((split, lo, max(hi, lo)))
    if not any(hi > lo for _, lo, hi in out):
        raise ValueError(f"split {'+'.join(p[0] for p in parts)!r} slice selects no rows (sizes: {sizes})")
    return out
