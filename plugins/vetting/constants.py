"""Tunables of the vetting plugin, with their units in their names.

Limits follow the FEC's 2025–2026 figures; every one of them is a plugin setting
(``--setting vetting.contribution_limit_usd=3300``) or a per-run option.
"""

from __future__ import annotations

# FEC rules
CONTRIBUTION_LIMIT_USD = 3500.0  # per individual, per candidate committee, per election (2025–2026)
ITEMIZATION_THRESHOLD_USD = 200.0  # aggregate above which name, address, employer, occupation are required

# Matching (scores are in [0, 1])
MATCH_THRESHOLD = 0.90  # a name or organisation match at or above this is flagged
NAME_FLOOR = 0.75  # name-only score a candidate pair needs to be scored with its evidence
ORG_THRESHOLD = 0.92  # employer / organisation name similarity to flag
FIRST_NAME_TYPO_MIN = 0.85  # Jaro-Winkler below which two unknown first names are not a typo of one another
INITIAL_SCORE = 0.90  # first name given as a compatible initial ("R." for Robert)
MISSING_FIRST_SCORE = 0.70  # one side has no first name
COMPOUND_SURNAME_SCORE = 0.97  # surnames equal only through a compound alternative (Garcia Lopez ~ Lopez)
LAST_NAME_WEIGHT = 0.5  # name score = weight·last + (1 − weight)·first, then middle-name adjustments
RIVAL_MARGIN = 0.10  # a row's person matches scoring this far below its best match are not flagged
MIN_DELETE_LAST_LEN = 3  # surnames at least this long are blocked with one-edit neighbours too

# Evidence beyond the name: score points added to the name score, about 0.03 per natural-log unit of
# the likelihood ratio P(evidence | same person) / P(evidence | a namesake), for lobbyists and agents
# whose list address is where they work and whose contribution gives where they live.
EMPLOYER_MATCH_POINTS = 0.15  # ~55 % of matches vs ~0.1 % of namesakes
EMPLOYER_MISMATCH_POINTS = -0.05  # ~15 % vs ~70 %
EMPLOYER_MATCH_MIN = 0.90  # token-set similarity for "employer matches"
EMPLOYER_MISMATCH_MAX = 0.60  # below this the employers differ
STATE_MATCH_POINTS = 0.03  # same state, another city: ~15 % vs ~5 %
STATE_NEIGHBOUR_POINTS = 0.03  # lives next door to where they work (DC/MD/VA): ~25 % vs ~8 %
STATE_MISMATCH_POINTS = -0.11  # ~2 % vs ~85 %
CITY_MATCH_POINTS = 0.12  # same city and state (instead of STATE_MATCH_POINTS): ~60 % vs ~1 %
OCCUPATION_MATCH_POINTS = 0.02
MIDDLE_MATCH_POINTS = 0.02
MIDDLE_CONFLICT_POINTS = -0.10
COMMON_NAME_POINTS_PER_BIT = 0.03  # penalty per doubling of the expected number of namesakes
COMMON_NAME_MAX_POINTS = 0.12

# Running
CHUNK_ROWS = 50_000  # contributions per child job
SCHEDULE_CRON = "0 6 * * *"  # daily at 06:00
RUN_BLOB_PREFIX = "vetting/runs/"
DECISION_BLOB_PREFIX = "vetting/decisions/"
WATCHLIST_CACHE_ENTRIES = 2  # compiled watchlist indexes kept per process
MATCH_CACHE_NAMES = 500_000  # contributor names whose watchlist matches a process remembers
MALFORMED_IN_RESULT = 20  # malformed rows listed in the job result (all of them are in a blob)
FLAGS_IN_EMAIL = 25  # flags listed in the summary e-mail
SOURCE_TIMEOUT_S = 300.0  # reading a contributions or watchlist source over HTTP

# FEC bulk individual contributions (itcont.txt): pipe-delimited, no header.
FEC_COLUMNS = (
    "CMTE_ID", "AMNDT_IND", "RPT_TP", "TRANSACTION_PGI", "IMAGE_NUM", "TRANSACTION_TP", "ENTITY_TP", "NAME",
    "CITY", "STATE", "ZIP_CODE", "EMPLOYER", "OCCUPATION", "TRANSACTION_DT", "TRANSACTION_AMT", "OTHER_ID",
    "TRAN_ID", "FILE_NUM", "MEMO_CD", "MEMO_TEXT", "SUB_ID",
)  # fmt: skip
PERSON_ENTITY_TYPES = frozenset({"", "IND", "CAN"})  # contributors who are people
LIMITED_ENTITY_TYPES = frozenset({"", "IND"})  # subject to the individual limit (a candidate's own funds are not)
ORGANIZATION_ENTITY_TYPES = frozenset({"ORG"})  # may not give to a candidate committee
REFUND_TRANSACTION_TYPES = frozenset({"22Y", "22Z", "22R"})  # refunds to contributors: subtract from totals
MEMO_CODE = "X"  # memo entries are not counted in totals

# Rules (the `rule` column of the flagged CSV)
RULE_WATCHLIST_NAME = "watchlist_name"
RULE_WATCHLIST_ORGANIZATION = "watchlist_organization"
RULE_REFUSED_INDUSTRY = "refused_industry"
RULE_OVER_LIMIT = "over_limit"
RULE_ORGANIZATION_CONTRIBUTION = "organization_contribution"
RULE_MISSING_FIELDS = "missing_fields"
RULE_FOREIGN_ADDRESS = "foreign_address"
RULES = (
    RULE_WATCHLIST_NAME, RULE_WATCHLIST_ORGANIZATION, RULE_REFUSED_INDUSTRY, RULE_OVER_LIMIT,
    RULE_ORGANIZATION_CONTRIBUTION, RULE_MISSING_FIELDS, RULE_FOREIGN_ADDRESS,
)  # fmt: skip
