#!/usr/bin/env python3
"""Writes docs/python-api.md, the Python API reference, from the installed nodewrite package.

Every public name (each module's ``__all__``) gets its signature and its docstring: for a
function of the extension module the signature is the first line of its docstring (pybind11
writes it there); for a Python function or class, ``inspect.signature``. A name whose docstring
says it is deprecated is listed once, at the end, instead of being documented in full. Nothing
here is written by hand, so the page is exactly what ``help()`` says; python_tests/test_docs.py
fails when the committed page differs from what this script produces.

usage: gen_python_api.py [OUT.md]      (default: print to stdout)
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys

MODULES = ("nodewrite", "nodewrite.errors", "nodewrite.tl", "nodewrite.saelens", "nodewrite.tdb")
ADDRESS = re.compile(r"<([^<>]*?) at 0x[0-9a-fA-F]+>")
DEPRECATED = re.compile(r"\bdeprecated\b", re.I)


def doc_of(obj: object) -> str:
    d = obj.__doc__ if isinstance(obj.__doc__, str) else ""
    return inspect.cleandoc(d) if d else ""


def split_signature(name: str, doc: str) -> tuple[str | None, str]:
    """pybind11's docstrings start with 'name(args) -> ret'; returns (that line, the rest)."""
    first, _, rest = doc.partition("\n")
    if re.match(rf"^{re.escape(name)}\(.*\)( -> .+)?$", first):
        return first, rest.strip("\n")
    return None, doc


def python_signature(name: str, obj: object) -> str | None:
    try:
        sig = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    def clean(a: object) -> object:
        # annotations kept as strings (`from __future__ import annotations`, forward references)
        if type(a).__name__ == "ForwardRef":  # typing.NamedTuple fields under `from __future__ import annotations`
            a = a.__forward_arg__
        return _Shown(re.sub(r"[\"']|\b_core\.", "", a)) if isinstance(a, str) else a

    sig = sig.replace(
        parameters=[p.replace(annotation=clean(p.annotation)) for p in sig.parameters.values()],
        return_annotation=clean(sig.return_annotation),
    )
    text = ADDRESS.sub(lambda m: "<" + m.group(1).split()[0] + ">", str(sig))
    return f"{name}{text}"


class _Shown:
    """An annotation printed as its text (inspect prints a str annotation with quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def signature_and_doc(name: str, obj: object) -> tuple[str | None, str]:
    doc = doc_of(obj)
    sig, rest = split_signature(name, doc)
    if sig is None:
        sig = python_signature(name, obj)
    sig = sig.replace("(self, ", "(").replace("(self)", "()") if sig else sig
    return sig, rest


def prose(doc: str) -> list[str]:
    """A docstring as Markdown: its lines as written, except that an indented line (an example
    under an rST '::') becomes inline code, so the page has no code block that is not run."""
    out = []
    for line in doc.splitlines():
        if line.startswith("    ") and line.strip():
            out.append(f"`{line.strip()}`  ")
        else:
            out.append(re.sub(r"::$", ":", line.rstrip()))
    while out and not out[-1]:
        out.pop()
    return out


def value_text(value: object) -> str:
    text = ADDRESS.sub(lambda m: "<" + m.group(1).split()[0] + ">", repr(value))
    return f"`{text}`"


def is_deprecated(doc: str) -> bool:
    head = "\n".join(doc.splitlines()[:2])
    return bool(DEPRECATED.search(head))


def members(cls: type) -> list[tuple[str, object]]:
    """The public methods and properties a class defines itself (not those of object/Exception)."""
    out = []
    for name, value in cls.__dict__.items():
        if name.startswith("_"):
            continue
        out.append((name, value))
    return out


class Page:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.deprecated: list[str] = []
        self.seen: set[int] = set()

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def callable_entry(self, level: str, qual: str, short: str, obj: object) -> None:
        sig, rest = signature_and_doc(short, obj)
        if is_deprecated(rest or doc_of(obj)):
            first = (rest or doc_of(obj)).splitlines()[0]
            self.deprecated.append(f"- `{qual}`: {first}")
            return
        self.add(f"{level} `{qual}`", "")
        if sig:
            self.add(f"`{sig}`", "")
        body = prose(rest)
        if body:
            self.add(*body, "")
        else:
            self.add("(no docstring)", "")

    def class_entry(self, qual: str, short: str, cls: type) -> None:
        self.callable_entry("###", qual, short, cls)
        props = False
        for name, value in members(cls):
            target = value.fget if isinstance(value, property) else value
            if isinstance(value, (staticmethod, classmethod)):
                target = value.__func__
            if isinstance(value, property) or type(value).__name__ == "property":
                doc = doc_of(value)
                if is_deprecated(doc):
                    self.deprecated.append(f"- `{qual}.{name}`: {doc.splitlines()[0]}")
                    continue
                self.add(f"- `{short}.{name}` (property): {' '.join(prose(doc)) or '(no docstring)'}")
                props = True
                continue
            if props:
                self.add("")
                props = False
            if callable(target):
                self.callable_entry("####", f"{qual}.{name}", name, target)
        if self.lines[-1] != "":
            self.add("")

    def module(self, modname: str) -> None:
        mod = importlib.import_module(modname)
        names = [n for n in getattr(mod, "__all__", []) if not n.startswith("__")]
        todo = []
        for n in names:
            obj = getattr(mod, n)
            if id(obj) in self.seen and (inspect.isclass(obj) or callable(obj)):
                continue  # documented under the module that re-exports it first
            todo.append((n, obj))
        if not todo:
            return
        self.add(f"## `{modname}`", "")
        summary = doc_of(mod).split("\n\n")[0]
        if summary:
            self.add(*prose(summary), "")
        consts = [(n, o) for n, o in todo if not callable(o)]
        if consts:
            self.add("| constant | value |", "| --- | --- |")
            for n, o in consts:
                self.add(f"| `{modname}.{n}` | {value_text(o).replace('|', '&#124;')} |")
            self.add("")
        for n, obj in todo:
            if not callable(obj):
                continue
            self.seen.add(id(obj))
            if inspect.isclass(obj):
                self.class_entry(f"{modname}.{n}", n, obj)
            else:
                self.callable_entry("###", f"{modname}.{n}", n, obj)


def errors_table(page: Page) -> None:
    """Which exception each status of the library raises (nodewrite.errors.exception_for): the
    errors every function below may raise, stated once."""
    import nodewrite
    from nodewrite import errors

    exception_for = getattr(errors, "exception_for", None)
    if exception_for is None:
        return
    page.add("## Errors", "",
             "Every function below reports a failure of the library as the exception of its status; each",
             "function's text says which arguments it checks. A wrong argument *list* (a misspelt keyword, a",
             "missing argument) is Python's own `TypeError`.", "",
             "| status | code | exception | also a |", "| --- | ---: | --- | --- |")
    for name, code in nodewrite.STATUSES.items():
        exc = exception_for(code, "")
        if exc is None:
            continue
        cls = type(exc)
        builtin = [b.__name__ for b in cls.__mro__[1:] if b.__module__ == "builtins"
                   and b not in (Exception, BaseException, object)]
        page.add(f"| `{name}` | {code} | `{cls.__module__.split('.')[0]}.{cls.__name__}` | "
                 f"{', '.join(f'`{b}`' for b in builtin[:1]) or '—'} |")
    page.add("")


def generate() -> str:
    import nodewrite

    page = Page()
    page.add(
        "# Python API reference",
        "",
        f"nodewrite {nodewrite.__version__}. Generated by `tools/gen_python_api.py` from the "
        "docstrings of the package",
        "(`make docs` rewrites this page; `python_tests/test_docs.py` fails when it is out of date).",
        "Shapes use T for the tokens of the forward pass; every exception raised for a valid",
        "argument list is a `nodewrite.NodeWriteError` (see `nodewrite.errors`).",
        "For a guided tour see [python.md](python.md).",
        "",
    )
    errors_table(page)
    for m in MODULES:
        page.module(m)
    if page.deprecated:
        page.add("## Deprecated aliases", "",
                 "Kept for one release; each warns with a `DeprecationWarning` when called.", "",
                 *page.deprecated, "")
    while page.lines and page.lines[-1] == "":
        page.lines.pop()
    return "\n".join(page.lines) + "\n"


def main() -> int:
    text = generate()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
