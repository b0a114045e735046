"""VAT identification numbers: format and check digits, offline, with python-stdnum.

Only numbers of EU member states (and Northern Ireland's `XI`) are checked: the
standard's rules differ per country and stdnum knows each of them. A number with
any other prefix is kept as typed (without spaces), since outside the EU a tax
number is informational only.
"""

from __future__ import annotations

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

# stdnum's member-state keys are lower case and use `gr` for Greece, whose
# VAT prefix is `EL`.
_PREFIXES = {code.upper() for code in eu_vat.MEMBER_STATES} | {"EL"}


class InvalidVatId(ValueError):
    """A VAT id that can't be right: wrong length, characters or check digits."""


def vat_prefix(country_code: str) -> str:
    """The VAT prefix of an ISO 3166-1 code (`GR` -> `EL`)."""
    return "EL" if country_code.upper() == "GR" else country_code.upper()


def normalize_vat_id(number: str, country_code: str = "") -> str:
    """The compact form of `number` ("es b-5837 8431" -> "ESB58378431"), checked.

    A number typed without its prefix takes the EU country's one. Raises
    InvalidVatId when an EU number fails its country's format or check digits.
    """
    compact = "".join(number.split()).upper()
    if not compact:
        return ""
    prefix = vat_prefix(country_code) if country_code else ""
    if prefix in _PREFIXES and not compact[:2].isalpha():
        compact = prefix + compact
    if compact[:2] not in _PREFIXES:
        return compact
    try:
        return eu_vat.validate(compact)
    except ValidationError as exc:
        raise InvalidVatId(f"{compact} is not a valid VAT id: {exc}") from None
