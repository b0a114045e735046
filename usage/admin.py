"""Usage records (read-only: they come from the API and imports) and pricing.

Plans with their charges inline, metrics, subscriptions (changed only through
the services: add, and the "change plan" action that shows the proration
first), and the subscriptions inline on the account page.
"""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse

from accounts.models import Account
from billing.lib.admin import ReadOnlyAdmin
from billing.lib.money import line_cost
from usage import selectors, subscriptions
from usage.exceptions import PricingValidationError, SubscriptionConflict
from usage.models import Charge, Metric, Plan, Subscription, UsageRecord
from usage.rating import lines_total


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "client_id",
        "account",
        "service",
        "region",
        "resource_id",
        "start_time",
        "duration",
        "cost",
        "line_item",
    )
    list_filter = ("service", "region")
    list_select_related = ("account", "line_item")
    search_fields = ("=client_id", "=resource_id")
    raw_id_fields = ("account", "line_item")

    def lookup_allowed(self, lookup, value, request=None):
        # The account page links here filtered by account.
        return lookup == "account__id__exact" or super().lookup_allowed(lookup, value, request)


# --- pricing ---------------------------------------------------------------------------


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "unit", "aggregation")
    list_filter = ("aggregation",)
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        # Usage records name the metric by its code: it never changes.
        return ("code",) if obj is not None else ()


class ChargeForm(forms.ModelForm):
    """Checks a charge as the API does (usage.subscriptions.charge_fields)."""

    class Meta:
        model = Charge
        fields = ("metric", "model", "unit_amount", "free_units", "package_size", "tiers")

    def clean(self):
        super().clean()
        data = self.cleaned_data
        metric = data.get("metric")
        if metric is None or self.errors:
            return data
        raw = {
            "metric": metric.code,
            "model": data.get("model"),
            "unit_amount": data.get("unit_amount"),
            "free_units": data.get("free_units"),
            "package_size": data.get("package_size"),
            "tiers": data.get("tiers") or None,
        }
        if data.get("model") in (Charge.Model.GRADUATED, Charge.Model.VOLUME):
            # The form's defaults (0) mean "not set" for tiered charges.
            raw["unit_amount"] = raw["unit_amount"] or None
            raw["free_units"] = raw["free_units"] or None
        try:
            fields = subscriptions.charge_fields(raw, 0, {metric.code: metric})
        except PricingValidationError as exc:
            name = exc.field.removeprefix("charges[0].").split("[")[0].split(".")[0]
            raise forms.ValidationError(
                {name if name in self.fields else NON_FIELD_ERRORS: exc.message}
            ) from None
        data["tiers"] = fields["tiers"]
        data["unit_amount"] = fields["unit_amount"]
        data["free_units"] = fields["free_units"]
        return data


class ChargeInline(admin.StackedInline):
    model = Charge
    form = ChargeForm
    extra = 0
    autocomplete_fields = ("metric",)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Plans with their charges. A plan with subscriptions is read-only: publish a new one."""

    list_display = ("code", "name", "currency", "amount", "setup_fee", "trial_days", "subscribers")
    list_filter = ("currency",)
    search_fields = ("code", "name")
    inlines = (ChargeInline,)

    @admin.display(description="subscriptions")
    def subscribers(self, plan: Plan) -> int:
        return plan.subscriptions.count()

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.subscriptions.exists():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.subscriptions.exists():
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if change and obj.subscriptions.exists():
            raise PermissionDenied("A plan with subscriptions cannot change.")
        super().save_model(request, obj, form, change)


class SubscriptionAddForm(forms.ModelForm):
    class Meta:
        model = Subscription
        fields = ("account", "plan", "start_date")


class ChangePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.all())
    date = forms.DateField(help_text="The first day on the new plan (YYYY-MM-DD).")

    def __init__(self, *args, subscription: Subscription, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        plan_field = self.fields["plan"]
        assert isinstance(plan_field, forms.ModelChoiceField)
        plan_field.queryset = Plan.objects.exclude(pk=subscription.plan_id)

    def clean_date(self):
        day = self.cleaned_data["date"]
        if day <= self.subscription.start_date:
            raise forms.ValidationError(
                f"Must be after the start date, {self.subscription.start_date.isoformat()}."
            )
        return day


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Subscriptions change only through their actions: change plan, cancel."""

    list_display = ("id", "account", "plan", "start_date", "end_date", "trial_end_date")
    list_filter = ("plan",)
    list_select_related = ("account", "plan")
    search_fields = ("account__org_name", "plan__code")
    raw_id_fields = ("account",)
    actions = ("change_plan",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = SubscriptionAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("account", "plan", "start_date", "end_date", "trial_end_date")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return
        try:
            created = subscriptions.subscription_create(
                account=obj.account, plan=obj.plan, start_date=obj.start_date
            )
        except (PricingValidationError, SubscriptionConflict) as exc:
            raise PermissionDenied(exc.message) from None
        obj.pk = created.pk

    @admin.action(description="Change plan (shows the proration first)")
    def change_plan(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one subscription.", messages.WARNING)
            return None
        subscription = queryset.select_related("plan", "account").get()
        form = ChangePlanForm(
            request.POST if "preview" in request.POST or "apply" in request.POST else None,
            subscription=subscription,
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Change the plan of subscription {subscription.pk}",
            "subscription": subscription,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        if form.is_bound and form.is_valid():
            plan, day = form.cleaned_data["plan"], form.cleaned_data["date"]
            if "apply" in request.POST:
                try:
                    new = subscriptions.subscription_change_plan(
                        subscription=subscription, plan=plan, date=day
                    )
                except (PricingValidationError, SubscriptionConflict) as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                    return None
                self.message_user(
                    request,
                    f"Subscription {subscription.pk} ends on {day - dt.timedelta(days=1)}; "
                    f"subscription {new.pk} on {plan.code} starts on {day}.",
                    messages.SUCCESS,
                )
                return None
            before, after = selectors.change_plan_preview(subscription, plan, day)
            currency = subscription.account.currency
            context.update(
                {
                    "preview": True,
                    "before": _preview_rows(before, currency),
                    "after": _preview_rows(after, currency),
                    "before_total": lines_total(before, currency),
                    "after_total": lines_total(after, currency),
                    "month": f"{day:%B %Y}",
                    "currency": currency,
                }
            )
        return TemplateResponse(request, "admin/usage/subscription/change_plan.html", context)


def _preview_rows(lines, currency: str) -> list[dict]:
    return [
        {
            "name": line.name,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
            "cost": line_cost(line.quantity, line.unit_price, currency),
        }
        for line in lines
    ]


class _ShownOnlyFormSet(BaseInlineFormSet):
    """An inline that only shows rows: nothing on it can change, so the account form
    saves the same whether or not the browser posts this formset back."""

    def is_valid(self) -> bool:
        return True

    def has_changed(self) -> bool:
        return False

    def non_form_errors(self):
        return self.error_class()

    def save(self, commit: bool = True) -> list:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        return []


class SubscriptionInline(admin.TabularInline):
    """The account's subscriptions, on its page (read-only: change them from Subscriptions)."""

    model = Subscription
    formset = _ShownOnlyFormSet
    fields = ("plan", "start_date", "end_date", "trial_end_date")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-start_date",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _add_subscriptions_to_the_account_page() -> None:
    # Registered from here so the account admin needs no knowledge of pricing.
    account_admin = admin.site._registry.get(Account)
    if account_admin is not None and SubscriptionInline not in account_admin.inlines:
        # The stubs make `inlines` a ClassVar; the site's own instance is the one to extend.
        account_admin.inlines = (*account_admin.inlines, SubscriptionInline)  # type: ignore[misc]


_add_subscriptions_to_the_account_page()
