"""Python regex -> RE2 (Go regexp) syntax, for the routes the guard
checks (docs/PROTOCOL.md, "Routes").

The pattern is parsed with the re module's own parser and written back in
a subset of the syntax both engines read alike: no capturing groups (the
guard only asks "does it match"), \\xHH escapes, explicit classes instead
of \\d \\w \\s (whose meaning differs between the two).

``translate`` raises Unsupported for what cannot be written for Go's regexp,
even relaxed; the callers then fall back to a literal prefix.
"""

import re

try:  # Python 3.11+
    from re import _constants as _sre_c
    from re import _parser as _sre_parse
except ImportError:  # Python 3.9, 3.10
    import sre_constants as _sre_c
    import sre_parse as _sre_parse

# Go's regexp refuses counted repetitions above 1000, nested ones included
# (the product along any path of {n,m} counts).
GO_MAX_REPEAT = 1000
MAX_UNICODE = 0x10FFFF


class Unsupported(Exception):
    """A pattern that cannot be written for Go's regexp, even relaxed."""


def _op(name):
    return getattr(_sre_c, name, None)


LITERAL = _op("LITERAL")
NOT_LITERAL = _op("NOT_LITERAL")
ANY = _op("ANY")
IN = _op("IN")
BRANCH = _op("BRANCH")
SUBPATTERN = _op("SUBPATTERN")
MAX_REPEAT = _op("MAX_REPEAT")
MIN_REPEAT = _op("MIN_REPEAT")
POSSESSIVE_REPEAT = _op("POSSESSIVE_REPEAT")  # 3.11+
ATOMIC_GROUP = _op("ATOMIC_GROUP")  # 3.11+
AT = _op("AT")
ASSERT = _op("ASSERT")
ASSERT_NOT = _op("ASSERT_NOT")
GROUPREF = _op("GROUPREF")
GROUPREF_EXISTS = _op("GROUPREF_EXISTS")
CATEGORY = _op("CATEGORY")
NEGATE = _op("NEGATE")
RANGE = _op("RANGE")
MAXREPEAT = _sre_c.MAXREPEAT

_AT_START = {"AT_BEGINNING", "AT_BEGINNING_STRING"}
_AT_END = {"AT_END", "AT_END_STRING"}

_ASCII_DIGIT = [(0x30, 0x39)]
_ASCII_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_ASCII_SPACE = [(0x09, 0x0D), (0x20, 0x20)]
_UNI_SPACE_ASCII_PART = [(0x09, 0x0D), (0x1C, 0x20)]
_NON_ASCII = [(0x80, MAX_UNICODE)]


def _norm(ranges):
    """Sorted, merged, clipped to the code point space."""
    out = []
    for lo, hi in sorted(ranges):
        lo, hi = max(lo, 0), min(hi, MAX_UNICODE)
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _complement(ranges):
    out, nxt = [], 0
    for lo, hi in _norm(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_UNICODE:
        out.append((nxt, MAX_UNICODE))
    return out


def _category(name, ascii_only):
    """(narrowest, widest) sets for a class escape.

    Python's \\d, \\w and \\s are Unicode-aware, Go's are ASCII only. The
    widest set is used in positive classes and the narrowest under
    negation, so the result is never narrower than Python's: \\w and \\s
    take every non-ASCII character. \\d stays [0-9] (a path with
    non-ASCII digits is one only a scanner sends)."""
    if name.endswith("DIGIT"):
        lo = hi = _ASCII_DIGIT
    elif name.endswith("WORD"):
        lo = _ASCII_WORD
        hi = lo if ascii_only else lo + _NON_ASCII
    elif name.endswith("SPACE"):
        if ascii_only:
            lo = hi = _ASCII_SPACE
        else:
            lo, hi = _UNI_SPACE_ASCII_PART, _UNI_SPACE_ASCII_PART + _NON_ASCII
    else:
        raise Unsupported("class escape %s" % name)
    if "_NOT_" in name:
        return _complement(hi), _complement(lo)
    return _norm(lo), _norm(hi)


META = frozenset("\\.^$|?*+()[]{}")
_CLASS_META = frozenset("\\]^-[")


def _char(cp, in_class=False):
    """One code point as a literal: metacharacters escaped, printable
    characters as they are (both engines read a pattern as code points),
    the rest of Latin-1 as \\xHH."""
    c = chr(cp)
    if c in (_CLASS_META if in_class else META):
        return "\\" + c
    if 0x21 <= cp <= 0x7E:
        return c
    if 0xD800 <= cp <= 0xDFFF:
        raise Unsupported("surrogate code point in a pattern")
    if cp < 0x80 or (cp < 0x100 and not c.isprintable()):
        return "\\x%02x" % cp
    return c


def _clip_surrogates(ranges):
    out = []
    for lo, hi in ranges:
        if lo <= 0xDFFF and hi >= 0xD800:
            if lo < 0xD800:
                out.append((lo, 0xD7FF))
            if hi > 0xDFFF:
                out.append((0xE000, hi))
        else:
            out.append((lo, hi))
    return out


def _class_items(ranges):
    parts = []
    if (0x2D, 0x2D) in ranges:
        # A lone '-' first in a class needs no escape in either engine.
        parts.append("-")
        ranges = [r for r in ranges if r != (0x2D, 0x2D)]
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_char(lo, True))
        elif hi == lo + 1:
            parts.append(_char(lo, True) + _char(hi, True))
        else:
            parts.append(_char(lo, True) + "-" + _char(hi, True))
    return "".join(parts)


def class_regex(ranges):
    """A character class for a set of code point ranges, written so that
    both engines read it alike (non-ASCII bounds only as raw characters,
    never as \\u or \\x{} escapes)."""
    ranges = _norm(ranges)
    if not ranges:
        raise Unsupported("a character class that matches nothing")
    if ranges == [(0, MAX_UNICODE)]:
        return "(?s:.)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    comp = _complement(ranges)
    if comp and comp[-1][1] < 0x100:
        return "[^" + _class_items(comp) + "]"
    return "[" + _class_items(_clip_surrogates(ranges)) + "]"


class Piece:
    """One Python regex translated: ``body`` in RE2 syntax without the
    anchors, whether it was anchored at the start and at the end, the
    literal text it starts with, and how it was relaxed."""

    def __init__(self, body, kind, start, end, literal, whole, relaxed):
        self.body = body
        self.kind = kind  # "empty" | "atom" | "rep" | "seq" | "alt"
        self.start = start
        self.end = end
        self.literal = literal
        self.whole = whole  # the body is exactly the literal text
        self.relaxed = relaxed

    def concat(self):
        """body, safe to concatenate with others."""
        return "(?:%s)" % self.body if self.kind == "alt" else self.body


class _Writer:
    """Writes parsed regex items back in RE2 syntax. ``budget`` is what is
    left of Go's limit on nested counted repeats."""

    def __init__(self):
        self.relaxed = []
        self.groups = {}  # group number -> emitted text, for backreferences

    def relax(self, what):
        if what not in self.relaxed:
            self.relaxed.append(what)

    # Every emitter returns (text, kind).

    def seq(self, items, flags, budget):
        parts = []
        for op, av in items:
            text, kind = self.item(op, av, flags, budget)
            if kind == "empty":
                continue
            parts.append((text, kind))
        if not parts:
            return "", "empty"
        if len(parts) == 1:
            return parts[0]
        return "".join("(?:%s)" % t if k == "alt" else t for t, k in parts), "seq"

    def item(self, op, av, flags, budget):
        ascii_only = bool(flags & re.ASCII)
        if op is LITERAL:
            return _char(av), "atom"
        if op is NOT_LITERAL:
            return class_regex(_complement([(av, av)])), "atom"
        if op is ANY:
            return ("(?s:.)" if flags & re.DOTALL else "."), "atom"
        if op is IN:
            return class_regex(self.charset(av, ascii_only)), "atom"
        if op is CATEGORY:
            return class_regex(_category(av.name, ascii_only)[1]), "atom"
        if op is BRANCH:
            alts = []
            for sub in av[1]:
                text, kind = self.seq(sub.data, flags, budget)
                alts.append(text)
            return "|".join(alts), "alt"
        if op is SUBPATTERN:
            group, add, delete, sub = av
            inner = (flags | add) & ~delete
            text, kind = self.seq(sub.data, inner, budget)
            if group is not None:
                self.groups[group] = (text, kind)
            if (inner ^ flags) & re.IGNORECASE:
                text = "(?%s:%s)" % ("i" if inner & re.IGNORECASE else "-i", text)
                kind = "atom"
            return text, kind
        if ATOMIC_GROUP is not None and op is ATOMIC_GROUP:
            self.relax("atomic group as a plain group")
            return self.seq(av.data, flags, budget)
        if (
            op is MAX_REPEAT
            or op is MIN_REPEAT
            or (POSSESSIVE_REPEAT is not None and op is POSSESSIVE_REPEAT)
        ):
            if op is not MAX_REPEAT and op is not MIN_REPEAT:
                self.relax("possessive repeat as a greedy one")
            return self.repeat(av, flags, budget, lazy=op is MIN_REPEAT)
        if op is AT:
            name = av.name
            if name in _AT_START or name in _AT_END:
                self.relax("anchor inside the pattern dropped")
            else:
                self.relax("word boundary dropped")
            return "", "empty"
        if op is ASSERT or op is ASSERT_NOT:
            self.relax("lookaround dropped")
            return "", "empty"
        if op is GROUPREF:
            self.relax("backreference as a copy of its group")
            if av in self.groups:
                text, kind = self.groups[av]
                return ("(?:%s)" % text if kind != "atom" else text), "atom"
            return "(?s:.*)", "rep"
        if op is GROUPREF_EXISTS:
            self.relax("conditional group as an alternation")
            yes = self.seq(av[1].data, flags, budget)[0]
            no = self.seq(av[2].data, flags, budget)[0] if av[2] is not None else ""
            return "%s|%s" % (yes, no), "alt"
        raise Unsupported("regex construct %s" % getattr(op, "name", op))

    def charset(self, items, ascii_only):
        negate = False
        exact = []  # literals and ranges
        narrow = []  # categories, at their narrowest
        wide = []  # and at their widest
        for op, av in items:
            if op is NEGATE:
                negate = True
            elif op is LITERAL:
                exact.append((av, av))
            elif op is RANGE:
                exact.append(av)
            elif op is CATEGORY:
                lo, hi = _category(av.name, ascii_only)
                narrow.extend(lo)
                wide.extend(hi)
            else:
                raise Unsupported("class item %s" % getattr(op, "name", op))
        # Never narrower than Python's class: under negation the
        # categories count at their narrowest.
        if negate:
            return _complement(exact + narrow)
        return _norm(exact + wide)

    def repeat(self, av, flags, budget, lazy):
        lo, hi, sub = av
        unbounded = hi >= MAXREPEAT
        if lo > GO_MAX_REPEAT:
            self.relax("repeat count above %d" % GO_MAX_REPEAT)
            lo, hi, unbounded = GO_MAX_REPEAT, MAXREPEAT, True
        if not unbounded and hi > GO_MAX_REPEAT:
            self.relax("repeat count above %d" % GO_MAX_REPEAT)
            unbounded = True
        # Go checks the product of nested counted repeats against 1000.
        counted = not ((lo, unbounded) in ((0, True), (1, True)) or (lo, hi) == (0, 1))
        factor = (lo if unbounded else hi) if counted else 1
        if counted and factor > budget:
            self.relax("nested repeat counts too large for Go")
            counted = False
            unbounded = True
            lo = min(lo, 1)
            factor = 1
        inner_budget = budget // factor if factor > 0 else budget
        text, kind = self.seq(sub.data, flags, inner_budget)
        if kind == "empty":
            return "", "empty"
        if kind != "atom":
            text = "(?:%s)" % text
        if unbounded:
            q = {0: "*", 1: "+"}.get(lo, "{%d,}" % lo)
        elif (lo, hi) == (0, 1):
            q = "?"
        elif lo == hi:
            q = "{%d}" % lo
        else:
            q = "{%d,%d}" % (lo, hi)
        if lazy:
            q += "?"
        return text + q, "rep"


class _Seq:
    """A stand-in for the parser's SubPattern: a list of items in .data."""

    def __init__(self, data):
        self.data = data


def _is_at(item, names):
    return item[0] is AT and item[1].name in names


def _split_anchors(items):
    """(anchored start, items, anchored end) of a top-level sequence. An
    alternation whose every branch is anchored counts as anchored."""
    start = end = False
    items = list(items)
    if items and _is_at(items[0], _AT_START):
        start, items = True, items[1:]
    if items and _is_at(items[-1], _AT_END):
        end, items = True, items[:-1]
    if len(items) == 1 and items[0][0] is BRANCH:
        alts = [list(sub.data) for sub in items[0][1][1]]
        if not start and all(a and _is_at(a[0], _AT_START) for a in alts):
            start, alts = True, [a[1:] for a in alts]
        if not end and all(a and _is_at(a[-1], _AT_END) for a in alts):
            end, alts = True, [a[:-1] for a in alts]
        items = [(BRANCH, (None, [_Seq(a) for a in alts]))]
    return start, items, end


def translate(pattern, flags=0):
    """Translate one Python regex (as Django or a converter wrote it) to a
    Piece. Raises Unsupported when it cannot be expressed for Go."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except Exception as e:  # re.error, RecursionError, ...
        raise Unsupported("not a valid regex: %s" % e)
    state = parsed.state
    gflags = state.flags
    if gflags & re.LOCALE:
        raise Unsupported("the LOCALE flag")
    w = _Writer()
    items = parsed.data
    start, items, end = _split_anchors(items)
    if gflags & re.MULTILINE:
        # ^ and $ also match at newlines: as if unanchored.
        start = end = False
    literal = []
    whole = not gflags & re.IGNORECASE
    for op, av in items:
        if op is LITERAL and whole:
            literal.append(chr(av))
        else:
            whole = False
            break
    literal = "".join(literal)
    # A final slash stays last and outside any (?i:...), so that
    # APPEND_SLASH can make it optional.
    tail = ""
    if items and items[-1][0] is LITERAL and items[-1][1] == 0x2F:
        tail, items = "/", items[:-1]
    body, kind = w.seq(items, gflags, GO_MAX_REPEAT)
    if gflags & re.IGNORECASE and body:
        body, kind = "(?i:%s)" % body, "atom"
    if tail:
        body = ("(?:%s)" % body if kind == "alt" else body) + tail
        kind = "seq" if body != tail else "atom"
    try:
        re.compile(body)
    except Exception as e:
        raise Unsupported("translation %r does not compile: %s" % (body, e))
    return Piece(body, kind, start, end, literal, whole, w.relaxed)


def escape(text):
    """A literal for both engines."""
    return "".join(_char(ord(c)) for c in text)
