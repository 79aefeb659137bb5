"""What the tool's SQL can be hijacked through: the names it calls, read from the statements it sent.

:func:`surface` scans statement texts (as captured from the server log) with a small SQL
tokenizer and returns every *unqualified* function call (name and number of arguments),
every operator (symbol, binary or prefix, including the operators SQL syntax hides:
``IN``, ``LIKE``, ``BETWEEN``, ``CASE x WHEN``, ``NULLIF``, ``IS DISTINCT FROM``), the relation
names it reads (after FROM/JOIN, and ``'name'::regclass`` literals) and the types it casts to.
Schema-qualified names (``pg_catalog.f``, ``"public"."database_backups"``) are listed apart:
no other schema can stand in for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""
  (?P<space>\s+|--[^\n]*|/\*.*?\*/)
| (?P<estring>[eE]'(?:[^'\\]|\\.|'')*')
| (?P<string>'(?:[^']|'')*')
| (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?\$(?P=tag)?\$)
| (?P<param>\$\d+)
| (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
| (?P<qident>"(?:[^"]|"")*")
| (?P<ident>[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*)
| (?P<cast>::)
| (?P<op>[+\-*/<>=~!@\#%^&|`?]+)
| (?P<punct>[(),;.\[\]:])
""", re.X | re.S)

# Words that may precede "(" without being a function call (or that name no function: the
# parser turns them into expressions of their own).
_NOT_CALLS = {
    "all", "and", "any", "array", "as", "between", "by", "case", "cast", "check", "coalesce", "constraint",
    "cross", "default", "distinct", "else", "end", "except", "exists", "filter", "from", "greatest", "group",
    "having", "in", "inner", "intersect", "into", "is", "join", "key", "lateral", "least", "left", "like", "ilike",
    "limit", "not", "null", "on", "only", "or", "order", "outer", "over", "primary", "recursive", "references",
    "returning", "right", "row", "select", "set", "some", "table", "then", "union", "unique", "using", "values",
    "when", "where", "window", "with", "within", "index", "update", "delete", "insert", "full", "natural",
}
# Keywords after which an identifier followed by "(" is a name being defined, not a call.
_DEFINES = {"as", "recursive", "with", "table", "into", "index", "view", "function", "type", "trigger"}
# SQL-standard syntax the grammar turns into pg_catalog.<name>(...) explicitly (never searched).
_SYSTEM_SYNTAX = {"extract": {"from"}, "overlay": {"placing"}, "position": {"in"}, "substring": {"from", "for"},
                  "trim": {"both", "leading", "trailing", "from"}, "normalize": set()}
# Keywords that end an operand: an operator token after them is binary.
_VALUE_WORDS = {"null", "true", "false", "current_user", "current_date", "current_timestamp", "session_user",
                "current_role", "current_schema", "localtime", "localtimestamp", "current_catalog", "user", "end"}
_KEYWORDS = _NOT_CALLS | _DEFINES | {"asc", "desc", "nulls", "first", "last", "offset", "fetch", "for", "of",
                                     "then", "begin", "commit", "rollback", "read", "write", "isolation", "level",
                                     "local", "show", "lock", "mode", "access", "exclusive", "drop", "create",
                                     "if", "cascade", "restrict"}
_NAMES_RELATION = {"from", "join", "into", "table", "update", "only", "lateral", "exists"}
_FROM_ENDS = {"where", "group", "order", "having", "limit", "offset", "union", "intersect", "except", "window",
              "returning", "for", "fetch"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str

    @property
    def word(self) -> str:
        """Identifiers as PostgreSQL folds them (quoted ones keep their case)."""
        if self.kind == "ident":
            return self.text.lower()
        if self.kind == "qident":
            return self.text[1:-1].replace('""', '"')
        return self.text

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.lower() in words

    @property
    def ends_operand(self) -> bool:
        if self.kind in ("qident", "string", "estring", "dollar", "number", "param"):
            return True
        if self.kind == "ident":
            return self.word not in _KEYWORDS or self.word in _VALUE_WORDS
        return self.text in (")", "]")


def tokens(statement: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(statement):
        match = _TOKEN.match(statement, pos)
        if match is None:  # a character the scanner does not know: keep going
            out.append(Token("other", statement[pos]))
            pos += 1
            continue
        pos = match.end()
        kind = "dollar" if match.group("dollar") else match.lastgroup
        if kind != "space":
            out.append(Token(kind, match.group()))
    return out


@dataclass
class Surface:
    """Everything in the statements that is looked up by name."""

    functions: set[tuple[str, int]] = field(default_factory=set)  # (name, number of arguments), unqualified
    operators: set[tuple[str, str]] = field(default_factory=set)  # (symbol, 'b' binary | 'l' prefix)
    relations: set[str] = field(default_factory=set)  # unqualified relation names read
    regclass_literals: set[str] = field(default_factory=set)  # 'name'::regclass
    casts: set[str] = field(default_factory=set)  # type names after ::
    qualified: set[str] = field(default_factory=set)  # schema-qualified names (calls and relations)
    # (relation, word) for every word of a statement that reads the relation ("*" for SELECT * / t.*):
    # which of a catalog's columns the statement can refer to.
    relation_words: set[tuple[str, str]] = field(default_factory=set)
    statements: int = 0

    def update(self, other: "Surface") -> None:
        for name in ("functions", "operators", "relations", "regclass_literals", "casts", "qualified",
                     "relation_words"):
            getattr(self, name).update(getattr(other, name))
        self.statements += other.statements

    def names(self) -> set[str]:
        """A flat view for subset checks: 'f name/2', 'op = b', 'rel pg_class', ..."""
        return ({f"f {n}/{a}" for n, a in self.functions} | {f"op {s} {k}" for s, k in self.operators}
                | {f"rel {r}" for r in self.relations | self.regclass_literals})

    def describe(self) -> str:
        return (f"{len(self.functions)} functions, {len(self.operators)} operators, "
                f"{len(self.relations | self.regclass_literals)} relation names, {len(self.casts)} cast types "
                f"from {self.statements} statements")


def surface(statements) -> Surface:
    result = Surface()
    for statement in statements:
        result.update(_scan(tokens(statement)))
    return result


def _closing(toks: list[Token], open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(toks)):
        if toks[i].text in ("(", "["):
            depth += 1
        elif toks[i].text in (")", "]"):
            depth -= 1
            if depth == 0:
                return i
    return len(toks)


def _arguments(toks: list[Token], open_at: int) -> tuple[int, set[str]]:
    """Number of arguments of the call whose "(" is at open_at, and the keywords at its top level."""
    close = _closing(toks, open_at)
    inner = toks[open_at + 1:close]
    top_words: set[str] = set()
    count, depth, seen = 0, 0, False
    for tok in inner:
        if tok.text in ("(", "["):
            depth += 1
        elif tok.text in (")", "]"):
            depth -= 1
        if depth == 0 and tok.kind == "ident":
            top_words.add(tok.word)
            if tok.word == "order":  # an aggregate's ORDER BY: what follows are not arguments
                break
        if depth == 0 and tok.text == ",":
            count += 1
            continue
        if tok.text == "*" and not seen and depth == 0:
            continue  # count(*)
        if depth == 0 and tok.is_word("distinct", "all", "variadic") and not seen:
            continue
        seen = True
    return (count + 1 if seen else count), top_words


def _scan(toks: list[Token]) -> Surface:
    out = Surface(statements=1)
    first = toks[0].word if toks and toks[0].kind == "ident" else ""
    if first in ("set", "show", "begin", "commit", "rollback", "end", "abort", "savepoint", "release"):
        return out  # no expressions: "SET LOCAL x = 'v'" has no operator
    in_from: list[bool | None] = [False]  # per parenthesis depth: inside a FROM list?
    words = {t.word for t in toks if t.kind in ("ident", "qident")}
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else Token("start", "")
        nxt = toks[i + 1] if i + 1 < len(toks) else Token("end", "")
        if tok.text == "(":  # None: a call's parentheses, where FROM is syntax (extract(x FROM y))
            call = prev.kind == "qident" or (prev.kind == "ident" and prev.word not in _NOT_CALLS)
            in_from.append(None if call else False)
        elif tok.text == ")" and len(in_from) > 1:
            in_from.pop()
        elif tok.kind in ("ident", "qident"):
            _word(toks, i, prev, nxt, in_from, out)
        elif tok.kind == "op":
            binary = prev.ends_operand
            if tok.text == "*" and not binary:
                if prev.text != "(":
                    words.add("*")  # SELECT *, t.*: every column (count(*) reads none)
                continue
            if prev.is_word("operator"):
                continue  # OPERATOR(schema.op) is qualified
            out.operators.add(("<>" if tok.text == "!=" else tok.text, "b" if binary else "l"))
        elif tok.kind == "cast" and nxt.kind in ("ident", "qident"):
            if toks[i + 2:i + 3] and toks[i + 2].text == ".":
                continue  # ::pg_catalog.text
            out.casts.add(nxt.word)
            if nxt.word == "regclass" and prev.kind == "string":
                out.regclass_literals.add(prev.text[1:-1].replace("''", "'"))
    out.relation_words = {(r, w) for r in out.relations for w in words}
    return out


def _word(toks: list[Token], i: int, prev: Token, nxt: Token, in_from: list[bool], out: Surface) -> None:
    tok = toks[i]
    word = tok.word
    if tok.kind == "ident":
        _keyword_operators(toks, i, out)
    if tok.kind == "ident" and word in ("from", "join"):
        if in_from[-1] is not None and not prev.is_word("distinct"):  # not IS DISTINCT FROM
            in_from[-1] = True
        return
    if tok.kind == "ident" and (word in _FROM_ENDS or word == "select") and in_from[-1] is not None:
        in_from[-1] = False
    if prev.kind == "cast":
        return  # a type name
    if nxt.text == "." and toks[i + 2:i + 3] and toks[i + 2].kind in ("ident", "qident"):
        after = toks[i + 3] if i + 3 < len(toks) else Token("end", "")
        if after.text == "(" or prev.is_word(*_NAMES_RELATION):  # a qualified call or relation
            out.qualified.add(f"{word}.{toks[i + 2].word}")
        return  # else alias.column
    if prev.text == ".":
        return  # the second half of a qualified name, or a column of an alias
    if nxt.text == "(":
        if tok.kind == "ident" and word == "nullif":
            out.operators.add(("=", "b"))  # NULLIF(a, b) looks up "=" by name
            return
        if (tok.kind == "ident" and word in _NOT_CALLS) or prev.is_word(*_DEFINES):
            return
        arity, top = _arguments(toks, i + 1)
        if word in _SYSTEM_SYNTAX and top & _SYSTEM_SYNTAX[word]:
            return  # e.g. extract(epoch FROM x): the grammar calls pg_catalog.extract itself
        out.functions.add((word, arity))
        return
    if (prev.is_word("from", "join", "lateral", "only") and in_from[-1]) or (prev.text == "," and in_from[-1]):
        if tok.kind == "qident" or word not in _KEYWORDS:
            out.relations.add(word)


def _keyword_operators(toks: list[Token], i: int, out: Surface) -> None:
    """Operators the grammar looks up by name for keyword syntax."""
    tok = toks[i]
    word = tok.word
    prev = toks[i - 1] if i else Token("start", "")
    nxt = toks[i + 1] if i + 1 < len(toks) else Token("end", "")
    negated = prev.is_word("not")
    if word in ("like", "ilike"):
        symbol = {"like": "~~", "ilike": "~~*"}[word]
        out.operators.add(("!" + symbol if negated else symbol, "b"))
    elif word == "in" and nxt.text == "(":
        out.operators.add(("<>" if negated else "=", "b"))
    elif word == "between":
        out.operators.update({(">=", "b"), ("<=", "b")})
        if negated:
            out.operators.update({("<", "b"), (">", "b")})
    elif word == "distinct" and prev.is_word("is", "not") and nxt.is_word("from"):
        out.operators.add(("=", "b"))
    elif word == "case" and not nxt.is_word("when"):
        out.operators.add(("=", "b"))  # CASE x WHEN v: x = v
