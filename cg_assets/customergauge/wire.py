"""Every wire-level name of the CustomerGauge v7 sync APIs, and what we assume about it.

Correcting a name the vendor spells differently is a one-line change here. Each
assumption says how sure we are (see ../shared/reference/API-NOTES.md):

- [vendor]   confirmed by the vendor's documentation page.
- [viadot]   seen in the public dyvenia/viadot client, not confirmed by the vendor.
- [assumed]  our own choice where nothing is documented; the simulator implements it.

Assumptions about behaviour (also listed in docs/api-assumptions.md):
- [vendor]  The cursor is returned as ``cursor.next``; we treat it as opaque and pass
  back exactly what the API returned. [assumed] An empty page without ``cursor.next``
  keeps the cursor we sent.
- [vendor]  Paging is done only when ``data`` is an empty array; a short page is not the end.
- [assumed] ``period[start]`` and ``period[end]`` are inclusive dates in the system time
  zone, so start = end = D asks for the whole of day D.
- [assumed] A 200 whose body is not JSON (or is cut short) is a transient fault: it is
  retried like a 5xx, then fails quoting the start of the body.
- [assumed] An empty string or ``0000-00-00 00:00:00`` in a date field means null.
- [vendor]  Dates are ``YYYY-MM-DD HH:MM:SS`` in the customer's system time zone, no offset.
- [vendor]  Responses page, filter and authenticate like non-responses; an answered
  non-response moves there. [assumed] It keeps its key; the responses cursor follows the
  order of answering (the responses table's own primary key).
"""

from __future__ import annotations

from typing import Final

# --- hosts [vendor] -------------------------------------------------------------------
REGIONS: Final = ("eu", "us", "au")
DEFAULT_API_URL_TEMPLATE: Final = "https://api.{region}.customergauge.com"
DEFAULT_AUTH_URL_TEMPLATE: Final = "https://auth.{region}.customergauge.com/oauth2/token"

# --- OAuth2 client credentials [vendor] -----------------------------------------------
TOKEN_GRANT_TYPE: Final = "client_credentials"
TOKEN_FORM_GRANT_TYPE: Final = "grant_type"
TOKEN_FORM_CLIENT_ID: Final = "client_id"
TOKEN_FORM_CLIENT_SECRET: Final = "client_secret"
TOKEN_RESPONSE_ACCESS_TOKEN: Final = "access_token"
# [vendor] a token lives one hour; [assumed] `expires_in` may be absent.
TOKEN_RESPONSE_EXPIRES_IN: Final = "expires_in"
TOKEN_DEFAULT_LIFETIME_SECONDS: Final = 3600
AUTH_HEADER: Final = "Authorization"
AUTH_SCHEME: Final = "Bearer"

# --- sync endpoints [vendor] ----------------------------------------------------------
NON_RESPONSES_PATH: Final = "/v7/rest/sync/non-responses"
RESPONSES_PATH: Final = "/v7/rest/sync/responses"

# --- query parameters -----------------------------------------------------------------
PARAM_PER_PAGE: Final = "per_page"  # [vendor] 1..1000
PER_PAGE_MIN: Final = 1
PER_PAGE_MAX: Final = 1000
PARAM_CURSOR: Final = "cursor"  # [vendor] an integer returned by the API
PARAM_WITH: Final = "with[]"  # [viadot] expansion, e.g. with[]=properties
WITH_PROPERTIES: Final = "properties"  # [viadot] segment data
# [viadot] the client sends all four to both endpoints; [vendor] responses "can be expanded
# with drivers, questions, tags and segment data".
WITH_DRIVERS: Final = "drivers"
WITH_TAGS: Final = "tags"
WITH_QUESTIONS: Final = "questions"
PARAM_PERIOD_FIELD: Final = "period[field]"  # [viadot] sent on EVERY page
PARAM_PERIOD_START: Final = "period[start]"  # [viadot] YYYY-MM-DD, inclusive [assumed]
PARAM_PERIOD_END: Final = "period[end]"  # [vendor] YYYY-MM-DD, inclusive [assumed]
PERIOD_DATE_FORMAT: Final = "%Y-%m-%d"
# [viadot] the date types the period filter accepts (the vendor page lost the names).
PERIOD_FIELDS: Final = ("date_sent", "date_creation", "date_order")
NON_RESPONSES_PERIOD_FIELDS: Final = PERIOD_FIELDS
# [viadot] responses accept a fourth: when the survey was answered.
DATE_SURVEY_RESPONSE: Final = "date_survey_response"
RESPONSES_PERIOD_FIELDS: Final = (*PERIOD_FIELDS, DATE_SURVEY_RESPONSE)

# --- response body [vendor] -----------------------------------------------------------
BODY_DATA: Final = "data"
BODY_CURSOR: Final = "cursor"
BODY_CURSOR_NEXT: Final = "next"
BODY_MESSAGE: Final = "message"  # 401: {"message": "Unauthenticated."}

# --- records [vendor] + [viadot] ------------------------------------------------------
RECORD_KEY: Final = "number_customergauge"
# [viadot] fields of a non-response record (the vendor page lists them without names).
STATUS: Final = "status"
CONTACT: Final = "contact"
CONTACT_FIRST_NAME: Final = "first_name"
CONTACT_LAST_NAME: Final = "last_name"
ACCOUNT: Final = "account"
ACCOUNT_NAME: Final = "name"
ACCOUNT_NUMBER: Final = "number"
NUMBER_CUSTOMER: Final = "number_customer"
NUMBER_ORDER: Final = "number_order"
EMAIL: Final = "email"
PHONE: Final = "phone"
DATE_CREATION: Final = "date_creation"
DATE_ORDER: Final = "date_order"
DATE_SENT: Final = "date_sent"
DATE_EMAIL_SENT: Final = "date_email_sent"
DATE_OPENED: Final = "date_opened"
DATE_CLICKED: Final = "date_clicked"
LANGUAGE: Final = "language"
LINK: Final = "link"
PROPERTIES: Final = WITH_PROPERTIES  # [viadot] a list of {field, reference}
PROPERTY_FIELD: Final = "field"
PROPERTY_REFERENCE: Final = "reference"  # [viadot] may be null
# [assumed] status values, as the simulator spells them; the funnel reads them. A status
# naming a failure or a bounce counts as failed.
STATUS_OPENED: Final = ("survey-opened", "survey-clicked")
STATUS_CLICKED: Final = ("survey-clicked",)
STATUS_FAILURE_PATTERN: Final = "(?i)fail|bounce"
# A response record. [vendor] a non-response that is answered leaves non-responses and
# appears in responses. [assumed] it keeps its number_customergauge and the invitation's
# fields above (status excepted: nothing says a response has one, so none is declared).
# [assumed] date_survey_response, a period field [viadot], is also a record field.
# [viadot] drivers items are {label: ...} (the client flattens exactly that key).
DRIVERS: Final = WITH_DRIVERS
DRIVER_LABEL: Final = "label"
# [vendor, older GET Responses page] the answer's fields are `nps` (0-10) and `comment`
# (free text: personal data); `tags` and `questions` have no documented shape: not declared,
# whatever arrives is kept in extra_fields.
NPS: Final = "nps"
COMMENT: Final = "comment"
# [vendor] NPS categories: promoters answer 9-10, passives 7-8, detractors 0-6.
PROMOTER_MIN: Final = 9
PASSIVE_MIN: Final = 7
RECORD_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# [assumed] how the API spells "no date".
NULL_DATES: Final = ("", "0000-00-00 00:00:00")

# --- rate limiting [assumed]: none documented, so be ready for the usual header --------
RETRY_AFTER_HEADER: Final = "Retry-After"
