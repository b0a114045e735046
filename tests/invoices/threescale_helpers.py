"""The 3scale test helpers live in tests/support/threescale.py; this name still imports them."""

from tests.support.threescale import (  # noqa: F401
    XML_DECLARATION,
    parse_xml,
    send_form,
    send_json,
    tags,
    url,
)
