"""The official EN 16931 validation rules, compiled once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"


def rules_dir() -> Path:
    # Shipped next to the project, not inside it: the official artefacts, unedited.
    return Path(settings.BASE_DIR).parent / "shared" / "einvoice"


@dataclass(frozen=True)
class Failure:
    rule: str
    flag: str
    location: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule} [{self.flag}] at {self.location}: {self.text}"


class Rules:
    """One compiled Schematron (as XSLT): `failures(xml)` lists the failed asserts."""

    def __init__(self, processor, executable) -> None:
        self._processor = processor
        self._executable = executable

    def failures(self, xml: bytes) -> list[Failure]:
        node = self._processor.parse_xml(xml_text=xml.decode("utf-8"))
        report = etree.fromstring(self._executable.transform_to_string(xdm_node=node).encode())
        return [
            Failure(
                rule=element.get("id", ""),
                flag=element.get("flag", ""),
                location=element.get("location", ""),
                text=" ".join(element.findtext(f"{{{SVRL}}}text", "").split()),
            )
            for element in report.iter(f"{{{SVRL}}}failed-assert")
        ]

    def fatal(self, xml: bytes) -> list[Failure]:
        return [failure for failure in self.failures(xml) if failure.flag == "fatal"]


@pytest.fixture(scope="session")
def saxon():
    saxonche = pytest.importorskip("saxonche")
    if not rules_dir().is_dir():
        pytest.fail(f"the EN 16931 rules are missing: {rules_dir()}")
    with saxonche.PySaxonProcessor(license=False) as processor:
        yield processor


def _compile(processor, relative: str) -> Rules:
    compiler = processor.new_xslt30_processor()
    executable = compiler.compile_stylesheet(stylesheet_file=str(rules_dir() / relative))
    return Rules(processor, executable)


@pytest.fixture(scope="session")
def cii_rules(saxon) -> Rules:
    return _compile(saxon, "cii/EN16931-CII-validation.xslt")


@pytest.fixture(scope="session")
def ubl_rules(saxon) -> Rules:
    return _compile(saxon, "ubl/EN16931-UBL-validation.xslt")
