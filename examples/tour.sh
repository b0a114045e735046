#!/usr/bin/env bash
# A tour of both APIs and the ops commands on `make run`'s demo data, in order.
#
#   KEY=bk_... examples/tour.sh            # KEY: the API key `make run` printed
#   B=http://127.0.0.1:8000 (default)      # where the server listens
#   PYTHON=.venv/bin/python (default)      # runs manage.py for the ops commands
#
# Every step says what it expects and stops at the first other answer. Ids come
# from the answers, dates from today; the usage files are examples/usage.jsonl
# and examples/usage.csv (YYYY-MM and "ACCOUNT_ID" in them are filled in here).
# The README shows these commands; tests/examples/test_tour.py runs this script
# against a fresh database. To paste the steps one by one instead, run
# `KEY=bk_...; source examples/lib.sh` in the checkout first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=examples/lib.sh
source examples/lib.sh
trap 'rm -rf "$OUT"' EXIT

# == api ==
# Accounts: pick the demo's Acme Rockets (a Visa card on file, EUR, 21% VAT)
step 200 -u "$KEY:" "$B/admin/api/accounts.json?per_page=20"
ACCOUNT=$(jget 'next(a["account"]["id"] for a in d["accounts"] if a["account"]["org_name"] == "Acme Rockets")')
# Invoice List (filters: state, month, page, per_page)
step 200 -u "$KEY:" "$B/api/invoices.json?state=open&month=$MONTH&per_page=5"
# ... in XML, by Accept, key as a parameter
step 200 -H "Accept: application/xml" "$B/api/invoices?access_token=$KEY&page=2"
# Invoice Create (period defaults to the current UTC month)
step 201 -u "$KEY:" -X POST "$B/api/invoices.json" -H 'Content-Type: application/json' \
  -d '{"account_id": '"$ACCOUNT"', "period": "'"$MONTH"'"}'
ID=$(jget 'd["invoice"]["id"]')
# Invoice Read (provider_key works too)
step 200 "$B/api/invoices/$ID.xml?provider_key=$KEY"
# Invoice List by Account, and Invoice by Account
step 200 -u "$KEY:" "$B/api/accounts/$ACCOUNT/invoices.json"
step 200 -u "$KEY:" "$B/api/accounts/$ACCOUNT/invoices/$ID.json"
# Create Line Item (cost is the line total), and the Line Items List
step 201 -u "$KEY:" -X POST "$B/api/invoices/$ID/line_items.json" -d name=Support -d cost=150.00 -d quantity=3
step 201 -u "$KEY:" -X POST "$B/api/invoices/$ID/line_items.json" -d name=Setup -d cost=99.00
LINE=$(jget 'd["line_item"]["id"]')
step 200 -u "$KEY:" "$B/api/invoices/$ID/line_items.xml"
# Delete Line Item (200, empty body)
step 200 -u "$KEY:" -X DELETE "$B/api/invoices/$ID/line_items/$LINE.json"
# Invoice Update (only period and friendly_id change). A number set by hand must be
# in the invoice's series and one the series has reached: one ahead of it is refused.
step 422 -u "$KEY:" -X PUT "$B/api/invoices/$ID.json" -H 'Content-Type: application/json' \
  -d '{"friendly_id": "'"$MONTH"'-00009001"}'
# Invoice Update state (issue it)
step 200 -u "$KEY:" -X PUT "$B/api/invoices/$ID/state.json?state=pending"
# Invoice Charge (201 with the paid invoice, or 422)
step 201 -u "$KEY:" -X POST "$B/api/invoices/$ID/charge.json"
# Payment Transactions List
step 200 -u "$KEY:" "$B/api/invoices/$ID/payment_transactions.json"
# The PDF (302 to a signed, expiring link; -L follows it)
step 200 -L -u "$KEY:" "$B/api/invoices/$ID.pdf"
[[ $BODY == %PDF* ]]   # it is a PDF
# Accounts: signup, list, read, update, delete
step 201 -u "$KEY:" -X POST "$B/admin/api/signup.json" -d org_name=Initrode -d email=ap@initrode.test -d currency=EUR
NEW_ACCOUNT=$(jget 'd["account"]["id"]')
step 200 -u "$KEY:" "$B/admin/api/accounts.xml"
step 200 -u "$KEY:" "$B/admin/api/accounts/$NEW_ACCOUNT.json"
step 200 -u "$KEY:" -X PUT "$B/admin/api/accounts/$NEW_ACCOUNT.json" -H 'Content-Type: application/json' \
  -d '{"billing_address": {"city": "Shelbyville"}}'
step 200 -u "$KEY:" -X DELETE "$B/admin/api/accounts/$NEW_ACCOUNT.json"
# == end ==

# == v1 ==
V1=$B/v1
AUTH="Authorization: Bearer $KEY"
JSON="Content-Type: application/json"
# Create an issued invoice from the seed's four fields (customer_id = an account id)
step 201 -X POST "$V1/invoices" -H "$AUTH" -H "$JSON" -H "Idempotency-Key: order-$RUN" \
  -d '{"customer_id": '"$ACCOUNT"', "amount": 100.0, "date": "'"$TODAY"'", "due_date": "'"$(day 30)"'"}'
ISSUED=$(jget 'd["id"]')
# ... or a draft with lines, to edit (PATCH/PUT/DELETE) and issue later
step 201 -X POST "$V1/invoices" -H "$AUTH" -H "$JSON" \
  -d '{"customer_id": '"$ACCOUNT"', "draft": true, "line_items": [{"description": "Consulting", "quantity": 3, "price": 150}]}'
DRAFT=$(jget 'd["id"]')
step 200 -X PATCH "$V1/invoices/$DRAFT" -H "$AUTH" -H "$JSON" \
  -d '{"line_items": [{"description": "Consulting", "quantity": 4, "price": 150}]}'
# List (a bare array; X-Total-Count and Link headers carry the pages) and read one
step 200 "$V1/invoices?state=pending,unpaid&month=$MONTH&per_page=50&page=1" -H "$AUTH"
step 200 "$V1/invoices/$DRAFT" -H "$AUTH"
# Issue (optionally with a due date), charge the card on file or record a transfer, cancel
step 200 -X POST "$V1/invoices/$DRAFT/issue" -H "$AUTH" -H "$JSON" -d '{"due_date": "'"$(day 15)"'"}'
step 200 -X POST "$V1/invoices/$DRAFT/charge" -H "$AUTH" -H "Idempotency-Key: charge-$DRAFT-$RUN"
# The issued invoice as an EN 16931 e-invoice (UBL, or syntax=cii)
step 200 "$V1/invoices/$DRAFT/einvoice?syntax=ubl" -H "$AUTH"
step 200 -X POST "$V1/invoices/$ISSUED/mark_paid" -H "$AUTH" -H "$JSON" \
  -d '{"method": "bank_transfer", "reference": "WIRE-0042"}'
step 201 -X POST "$V1/invoices" -H "$AUTH" -H "$JSON" \
  -d '{"customer_id": '"$ACCOUNT"', "draft": true, "line_items": [{"description": "Training", "quantity": 1, "price": 400}]}'
step 200 -X POST "$V1/invoices/$(jget 'd["id"]')/cancel" -H "$AUTH" -H "$JSON" -d '{"reason": "duplicate"}'
# == end ==

# == usage ==
# One record, an array (up to 10,000) or JSON Lines. `id` is yours: a repeated id is
# counted as a duplicate, never stored twice (201 stored, 200 all duplicates).
RECORD='[{"id": "evt-'"$LAST_MONTH"'-1", "account_id": '"$ACCOUNT"', "resource_id": "i-1234567890abcdef0",
  "resource_name": "web-server-1", "service": "EC2", "region": "us-west-1",
  "start_time": "'"$LAST_MONTH"'-02T00:00:00Z", "end_time": "'"$LAST_MONTH"'-02T01:00:00Z", "cost": "0.50"}]'
step 201,200 -X POST "$V1/usage" -H "$AUTH" -H "$JSON" -d "$RECORD"
step 200 -X POST "$V1/usage" -H "$AUTH" -H "$JSON" -d "$RECORD"
# JSON Lines from a file (examples/usage.jsonl, for last month and this account)
sed -e "s/YYYY-MM/$LAST_MONTH/g" -e "s/\"ACCOUNT_ID\"/$ACCOUNT/g" examples/usage.jsonl >"$OUT/usage.jsonl"
step 201,200 -X POST "$V1/usage" -H "$AUTH" -H 'Content-Type: application/x-ndjson' --data-binary @"$OUT/usage.jsonl"
# The report (POST) or the same as query parameters (GET); group_by is service,
# region, resource or day
FIRST=$LAST_MONTH-01
END=$(python3 -c "import calendar, sys; y, m = map(int, sys.argv[1].split('-')); print(f'{sys.argv[1]}-{calendar.monthrange(y, m)[1]:02d}')" "$LAST_MONTH")
step 200 -X POST "$V1/usage/report" -H "$AUTH" -H "$JSON" \
  -d '{"start_date": "'"$FIRST"'", "end_date": "'"$END"'", "filters": {"region": "us-west-1", "service": "EC2"}}'
step 200 -H "$AUTH" "$V1/usage/report?start_date=$FIRST&end_date=$END&group_by=service&account_id=$ACCOUNT"
# Import a CSV (examples/usage.csv; --account for records without account_id)
sed -e "s/YYYY-MM/$LAST_MONTH/g" examples/usage.csv >"$OUT/usage.csv"
DEBUG=1 "$PYTHON" manage.py import_usage "$OUT/usage.csv" --account "$ACCOUNT" --no-progress
# Bill last month (its demo invoices wait for the run), then again: the second run finds nothing
DEBUG=1 "$PYTHON" manage.py run_billing --month "$LAST_MONTH" --dry-run --no-progress
DEBUG=1 "$PYTHON" manage.py run_billing --month "$LAST_MONTH" --no-progress
DEBUG=1 "$PYTHON" manage.py run_billing --month "$LAST_MONTH" --no-progress
# == end ==

# == pricing ==
# A metric and a plan priced on it (codes are unique: this run's stamp keeps them apart)
METRIC=sms-$RUN
PLAN=texts-$RUN
step 201 -X POST "$V1/metrics" -H "$AUTH" -H "$JSON" \
  -d '{"code": "'"$METRIC"'", "name": "SMS sent", "unit": "messages", "aggregation": "sum"}'
step 201 -X POST "$V1/plans" -H "$AUTH" -H "$JSON" -d '{"code": "'"$PLAN"'", "name": "Texts",
  "currency": "USD", "amount": 100, "setup_fee": 0, "trial_days": 0, "charges": [{"metric": "'"$METRIC"'",
  "model": "graduated", "tiers": [{"up_to": 1000, "unit_amount": 0},
  {"up_to": 10000, "unit_amount": "0.01"}, {"up_to": null, "unit_amount": "0.005"}]}]}'
# A new USD customer, subscribed from the first of this month
step 201 -u "$KEY:" -X POST "$B/admin/api/signup.json" -d org_name=Vandelay -d email=ap@vandelay.test -d currency=USD
CUSTOMER=$(jget 'd["account"]["id"]')
step 201 -X POST "$V1/subscriptions" -H "$AUTH" -H "$JSON" \
  -d '{"customer_id": '"$CUSTOMER"', "plan": "'"$PLAN"'", "start_date": "'"$MONTH"'-01"}'
SUBSCRIPTION=$(jget 'd["id"]')
# Metered usage: metric + quantity instead of cost (the plan prices it)
step 201 -X POST "$V1/usage" -H "$AUTH" -H "$JSON" -d '{"id": "'"$METRIC"'-1", "account_id": '"$CUSTOMER"',
  "metric": "'"$METRIC"'", "quantity": 12000, "start_time": "'"$TODAY"'T00:00:00Z"}'
# What the month's invoice will be so far: the fee and the tiers used
step 200 -H "$AUTH" "$V1/customers/$CUSTOMER/upcoming_invoice?month=$MONTH"
# Move to another plan from a day (the old one ends the day before), then cancel from a day
step 201 -X POST "$V1/subscriptions/$SUBSCRIPTION/change_plan" -H "$AUTH" -H "$JSON" \
  -d '{"plan": "scale", "date": "'"$(day 1)"'"}'
step 200 -X POST "$V1/subscriptions/$(jget 'd["id"]')/cancel" -H "$AUTH" -H "$JSON" \
  -d '{"date": "'"$(day 10)"'"}'
# == end ==

echo "tour complete"
