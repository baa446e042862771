"""Texts of leave and 本周跳过 parsing, zh and en side by side (joined to cards.texts on import)."""
from cards.texts import register

TEXTS = register({
    "leave.err.end_before_start": {"zh": "结束日期早于开始日期（{token}），请检查", "en": "The end is before the start ({token}); please check."},
    "leave.err.end_before_start.days": {"zh": "结束日期 {end} 早于开始日期 {start}，请检查", "en": "The end {end} is before the start {start}; please check."},
    "leave.err.missing_date": {"zh": "请写明请假到哪天，例如：请假 至 12-05 或 请假 12-01 至 12-05 年假，或：明天请假",
                               "en": "Say until when, e.g. leave to 12-05, leave 12-01 to 12-05 annual, or: leave tomorrow"},
    "leave.err.too_long": {"zh": "请假时间不能超过一年，请检查日期", "en": "A leave cannot be longer than a year; please check the dates."},
    "leave.err.invalid_date": {"zh": "日期 {token} 无效，请写成 12-05 这样的格式", "en": "{token} is not a valid date; write it like 12-05."},
    "leave.range": {"zh": "{start} 至 {end}", "en": "{start} to {end}"},
})
