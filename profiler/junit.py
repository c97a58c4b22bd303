"""JUnit XML reports, the format CI systems (GitHub test reporters, GitLab, Jenkins) display.

One ``<testsuite>`` inside ``<testsuites>``; each :class:`JUnitCase` becomes a ``<testcase>`` with a
``<failure>`` when it failed, ``<skipped message=...>`` when it could not be decided, and its
details in ``<system-out>``. Suite properties carry provenance
(device, runtime versions). Built with :mod:`xml.etree.ElementTree`, so the output is well-formed.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class JUnitCase:
    """One test case: ``failure`` is the one-line failure message, or ``None`` when it passed."""

    name: str
    classname: str
    time_s: float = 0.0
    failure: str | None = None
    failure_type: str = "failure"
    details: str = ""
    #: The one-line reason when the case could not be decided (``<skipped>``), else ``None``.
    skipped: str | None = None


#: Characters XML 1.0 does not allow (control characters other than tab, newline, return).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean(text: str) -> str:
    """``text`` with the characters XML 1.0 forbids replaced by ``?``."""
    return _INVALID.sub("?", text)


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, sort_keys=True, default=str)
    return clean(str(value))


def flatten(props: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys with string values (``{"a": {"b": 1}}`` → ``{"a.b": "1"}``)."""
    out: dict[str, str] = {}
    for key, value in props.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif value is not None:
            out[name] = _text(value)
    return out


def junit_xml(
    suite: str,
    cases: Iterable[JUnitCase],
    properties: Mapping[str, Any] | None = None,
    timestamp: str | None = None,
) -> str:
    """The JUnit XML document of one suite, as a string with an XML declaration."""
    cases = list(cases)
    failures = sum(c.failure is not None for c in cases)
    skipped = sum(c.skipped is not None and c.failure is None for c in cases)
    total_time = sum(c.time_s for c in cases)
    root = ET.Element(
        "testsuites", name=suite, tests=str(len(cases)), failures=str(failures), errors="0",
        skipped=str(skipped), time=f"{total_time:.3f}",
    )
    attrs = {"name": suite, "tests": str(len(cases)), "failures": str(failures), "errors": "0",
             "skipped": str(skipped), "time": f"{total_time:.3f}"}
    if timestamp:
        attrs["timestamp"] = timestamp
    ts = ET.SubElement(root, "testsuite", attrs)
    if properties:
        props = ET.SubElement(ts, "properties")
        for name, value in flatten(properties).items():
            ET.SubElement(props, "property", name=name, value=value)
    for case in cases:
        tc = ET.SubElement(ts, "testcase", name=clean(case.name), classname=clean(case.classname),
                           time=f"{case.time_s:.3f}")
        if case.failure is not None:
            fail = ET.SubElement(tc, "failure", message=clean(case.failure), type=case.failure_type)
            fail.text = clean(case.details or case.failure)
        elif case.skipped is not None:
            ET.SubElement(tc, "skipped", message=clean(case.skipped))
        if case.details:
            ET.SubElement(tc, "system-out").text = clean(case.details)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
