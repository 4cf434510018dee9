"""Messages of usage statistics (zh-TW and English, same keys)."""

from __future__ import annotations

ZH: dict[str, str] = {
    "stats_title": "使用統計",
    "stats_intro": "瀏覽、下載與 API 呼叫次數（僅計次數，不記錄任何個人資料）；"
    "約每 {seconds} 秒更新。",
    "stats_denied": "此頁僅限系統管理員。請以系統管理員身分登入，"
    "或在 Authorization 標頭附上 API 金鑰。",
    "stats_sign_in": "登入",
    "stats_bad_sort": "無法依「{sort}」（{order}）排序；可用的排序欄位：{keys}，順序：asc、desc。",
    "stats_back": "回到使用統計",
    "stats_totals": "總計",
    "stats_views": "瀏覽",
    "stats_downloads": "下載",
    "stats_api_calls": "API 呼叫",
    "stats_recent": "近 30 天",
    "stats_by_agency": "各機關",
    "stats_by_agency_caption": "各機關資料的使用次數（點選欄位標題排序）",
    "stats_by_dataset": "各資料集",
    "stats_by_dataset_caption": "各資料集的使用次數（點選欄位標題排序）",
    "stats_by_day": "每日使用（近 30 天）",
    "stats_by_day_caption": "近 30 天每日的瀏覽、下載與 API 呼叫次數",
    "stats_agency": "機關",
    "stats_dataset": "資料集",
    "stats_day": "日期",
    "stats_none": "（不屬於特定資料集）",
    "stats_empty": "尚無使用紀錄。",
    "stats_shown": "僅列出前 {shown} 筆（共 {count} 筆）。",
    "stats_usage": "使用次數",
    "stats_usage_summary": "瀏覽 {views:,} 次、下載 {downloads:,} 次、API 呼叫 {api_calls:,} 次",
}

EN: dict[str, str] = {
    "stats_title": "Usage statistics",
    "stats_intro": "Page views, downloads and API calls (counts only, no personal data is "
    "kept); updated about every {seconds} seconds.",
    "stats_denied": "This page is for system administrators only. Sign in as one, or send an "
    "API token in the Authorization header.",
    "stats_sign_in": "Sign in",
    "stats_bad_sort": "Cannot sort by {sort!r} ({order!r}); sort by one of {keys}, order asc "
    "or desc.",
    "stats_back": "Back to usage statistics",
    "stats_totals": "Totals",
    "stats_views": "Views",
    "stats_downloads": "Downloads",
    "stats_api_calls": "API calls",
    "stats_recent": "Last 30 days",
    "stats_by_agency": "By agency",
    "stats_by_agency_caption": "Uses of each agency's data (select a column heading to sort)",
    "stats_by_dataset": "By dataset",
    "stats_by_dataset_caption": "Uses of each dataset (select a column heading to sort)",
    "stats_by_day": "By day (last 30 days)",
    "stats_by_day_caption": "Page views, downloads and API calls on each of the last 30 days",
    "stats_agency": "Agency",
    "stats_dataset": "Dataset",
    "stats_day": "Date",
    "stats_none": "(no particular dataset)",
    "stats_empty": "Nothing has been used yet.",
    "stats_shown": "Only the first {shown} of {count} are listed.",
    "stats_usage": "Usage",
    "stats_usage_summary": "{views:,} views, {downloads:,} downloads, {api_calls:,} API calls",
}
