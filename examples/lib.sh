# Helpers and dates for examples/tour.sh; `source examples/lib.sh` (in the checkout,
# with KEY set) to paste the tour's steps one by one.
: "${KEY:?set KEY to the API key make run printed}"
B=${B:-http://127.0.0.1:8000}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=$(mktemp -d)

# step STATUS CURL_ARGS...: run curl and fail unless the status is STATUS (or one of
# STATUS's comma-separated values); the body is left in $BODY (and in $OUT/body).
step() {
  local want=$1 status
  shift
  status=$(curl -sS -o "$OUT/body" -w '%{http_code}' "$@")
  BODY=$(LC_ALL=C tr -d '\000' <"$OUT/body")
  if [[ ",$want," != *",$status,"* ]]; then
    echo "FAIL: curl $* -> $status (expected $want)" | sed "s/$KEY/\$KEY/g" >&2
    echo "$BODY" | head -c 2000 >&2
    echo >&2
    return 1
  fi
  echo "ok $status  curl $*" | sed "s/$KEY/\$KEY/g"
}
# jget EXPR: a value from the last JSON answer (d is the parsed body).
jget() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)" <<<"$BODY"; }
# day OFFSET: today plus OFFSET days, YYYY-MM-DD (UTC).
day() { python3 -c "import datetime as d, sys; print(d.datetime.now(d.UTC).date() + d.timedelta(days=int(sys.argv[1])))" "$1"; }

MONTH=$(day 0 | cut -c1-7)
TODAY=$(day 0)
LAST_MONTH=$(python3 -c "import datetime as d; print(f'{d.datetime.now(d.UTC).date().replace(day=1) - d.timedelta(days=1):%Y-%m}')")
RUN=$(date -u +%Y%m%d%H%M%S)   # makes idempotency keys unique per run
