"""The finance workspace's people: a Finance clerk, an Auditor and a superuser."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def finance_user(db, django_user_model):
    user = django_user_model.objects.create_user("fin", password="fin-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return user


@pytest.fixture
def auditor_user(db, django_user_model):
    user = django_user_model.objects.create_user("aud", password="aud-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Auditor"))
    return user


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def auditor(client, auditor_user):
    client.force_login(auditor_user)
    return client


@pytest.fixture
def superuser_client(client, staff_user):
    client.force_login(staff_user)
    return client
