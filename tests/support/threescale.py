"""Small helpers shared by the 3scale API tests."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def url(path: str, key: str | None = None, **params) -> str:
    if key is not None:
        params["access_token"] = key
    return f"{path}?{urlencode(params, doseq=True)}" if params else path


def send_json(client, method: str, path: str, key: str | None, body, **params):
    return getattr(client, method)(
        url(path, key, **params), data=json.dumps(body), content_type="application/json"
    )


def send_form(client, method: str, path: str, key: str | None, body: dict, **params):
    return getattr(client, method)(
        url(path, key, **params),
        data=urlencode(body, doseq=True),
        content_type="application/x-www-form-urlencoded",
    )


def parse_xml(response) -> ET.Element:
    assert response.content.startswith(XML_DECLARATION), response.content[:80]
    return ET.fromstring(response.content)


def tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]
