"""Hostile values in the 3scale invoice search: never an error, never a 500, only what matches."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from tests.factories import make_invoice


@pytest.fixture
def invoice(db):
    return make_invoice(period=dt.date(2026, 3, 1))


def search(key: str, **params) -> list[int]:
    response = APIClient().get("/api/invoices.json", {"access_token": key, **params})
    assert response.status_code == 200, (params, response.content)
    return [item["invoice"]["id"] for item in response.json()["invoices"]]


@pytest.mark.parametrize(
    "params",
    [
        {"year": "²²²²"},
        {"year": "0000"},
        {"year": "٢٠٢٦"},
        {"year": "2_26"},
        {"year": "9" * 5000},
        {"month_number": "²"},
        {"month_number": "٣"},
        {"month_number": "0"},
        {"month_number": "1_2"},
        {"month": "0000-03"},
        {"month": "２０２６-03"},
        {"number": "²"},
        {"state": "open\x00"},
    ],
)
def test_values_that_cannot_match_give_an_empty_list(admin_key, invoice, params):
    assert search(admin_key[1], **params) == []


def test_the_same_filters_in_ascii_digits_match(admin_key, invoice):
    assert search(admin_key[1], year="2026", month_number="3") == [invoice.pk]
    assert search(admin_key[1], year="9999") == []
    assert search(admin_key[1], month="2026-03") == [invoice.pk]


@pytest.mark.parametrize(
    "params",
    [{"page": "²"}, {"page": "١"}, {"page": "1_0"}, {"per_page": "²"}, {"page": "9" * 5000}],
)
def test_pages_that_are_not_ascii_digits_are_the_first(admin_key, invoice, params):
    response = APIClient().get("/api/invoices.json", {"access_token": admin_key[1], **params})
    assert response.status_code == 200
    assert [item["invoice"]["id"] for item in response.json()["invoices"]] == [invoice.pk]
