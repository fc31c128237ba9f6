//! Calendar helpers: fiscal years, months and the granularity of reports.

use time::Date;

/// Report granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// One row per day.
    Day,
    /// One row per calendar month.
    Month,
    /// One row per calendar year.
    Year,
    /// One row per fiscal year of the plan.
    FiscalYear,
}

/// The year in which the fiscal year containing `date` starts. With `start_month` 7
/// (Pakistan, July–June), 2025-06-30 is in fiscal year 2024 (FY2024-25) and 2025-07-01 in 2025.
pub fn fiscal_year(date: Date, start_month: u8) -> i32 {
    if u8::from(date.month()) >= start_month {
        date.year()
    } else {
        date.year() - 1
    }
}

/// Label of a fiscal year: "2025" for a calendar year, "FY2025-26" for one starting mid-year.
pub fn fiscal_year_label(start_year: i32, start_month: u8) -> String {
    if start_month == 1 {
        format!("{start_year}")
    } else {
        format!("FY{}-{:02}", start_year, (start_year + 1).rem_euclid(100))
    }
}

/// The label of the period containing `date`.
pub fn period_label(date: Date, by: Granularity, fiscal_start_month: u8) -> String {
    match by {
        Granularity::Day => date.to_string(),
        Granularity::Month => format!("{}-{:02}", date.year(), u8::from(date.month())),
        Granularity::Year => format!("{}", date.year()),
        Granularity::FiscalYear => {
            fiscal_year_label(fiscal_year(date, fiscal_start_month), fiscal_start_month)
        }
    }
}

/// Years (365.25 days) from `a` to `b`.
pub fn years_between(a: Date, b: Date) -> f64 {
    (b - a).whole_days() as f64 / 365.25
}
