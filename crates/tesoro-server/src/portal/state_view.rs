//! Everything the public page of one state shows, computed once from the store and kept
//! until the data underneath changes: holdings at a block, their value, per-address list
//! with tiers, holdings and value over time, acquisitions against internal transfers, and
//! the latest signed statement.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use tesoro_core::chain::BlockMeta;
use tesoro_core::entity::{parents_within, roll_up, tree_order};
use tesoro_core::movement::date_of_unix;
use tesoro_core::price::{fmt_date, parse_date, value_of, PriceBook};
use tesoro_core::report::accumulation;
use tesoro_core::statement::Tier;
use tesoro_core::wallet::script_address;
use tesoro_core::{Entity, EntityCode};
use tesoro_store::{Store, WalletTier};
use time::Date;

use super::charts::{self, Bars, Line};
use super::fmt;
use super::ledger;
use super::statements::{self, StatementInfo};
use super::PortalError;

/// The currency a state's people use, by the ISO 3166 country code its entity code starts
/// with (the office's codes are `SV`, `PK`, `US-…`). Unknown states see USD only.
pub fn local_currency(code: &str) -> &'static str {
    match code.get(..2).unwrap_or("") {
        "PK" => "PKR",
        "BT" => "BTN",
        "GB" => "GBP",
        "CZ" => "CZK",
        "UA" => "UAH",
        "AR" => "ARS",
        "BR" => "BRL",
        "DE" | "FR" | "ES" | "IT" | "FI" | "NL" => "EUR",
        "CH" => "CHF",
        "JP" => "JPY",
        "KZ" => "KZT",
        "TH" => "THB",
        _ => "USD",
    }
}

/// A value in one currency.
#[derive(Debug, Clone, Serialize)]
pub struct ValueRow {
    /// ISO code.
    pub currency: String,
    /// Price of one BTC.
    pub price: String,
    /// Value of the holdings, grouped with two decimals.
    pub value: String,
    /// Short form for the headline (745.45M).
    pub value_short: String,
    /// Day the price is from.
    pub from: String,
    /// True when the asked day had no price and the last known one is used.
    pub stale: bool,
    /// Exact value, for tests and JSON.
    pub exact: Decimal,
}

/// One agency in the entity tree with its holdings (everything below it included).
#[derive(Debug, Clone, Serialize)]
pub struct AgencyRow {
    /// Entity code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Depth below the state (0 is the state).
    pub depth: usize,
    /// Left padding of the name cell, in em, to show the tree.
    pub indent_em: String,
    /// BTC, full precision.
    pub btc: String,
    /// Value in USD at the page's price (empty without a price).
    pub usd: String,
}

/// One listed address.
#[derive(Debug, Clone, Serialize)]
pub struct AddressRow {
    /// The address.
    pub address: String,
    /// Owning entity code.
    pub entity: String,
    /// Wallet name.
    pub wallet: String,
    /// verified, published or private.
    pub tier: &'static str,
    /// Balance at the page's block.
    pub btc: String,
    /// Sats, for sorting and tests.
    pub sats: u64,
    /// Unspent outputs.
    pub utxos: usize,
}

/// Flows of one period.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRow {
    /// `2024-Q1` or `2024-03`.
    pub period: String,
    /// Value that entered the state from outside.
    pub acquired: String,
    /// Acquisitions by kind (`purchase 12.5, mining 0.3`).
    pub kinds: String,
    /// Value moved between the state's own wallets.
    pub internal: String,
    /// Value that left the state.
    pub disposed: String,
    /// Unclassified movements of the period.
    pub unclassified: u64,
}

/// The public page's data for one state at one block.
#[derive(Debug, Clone, Serialize)]
pub struct StateView {
    /// Entity code of the state.
    pub code: String,
    /// Its name.
    pub name: String,
    /// `?at=` as asked (a day or a height), if any.
    pub asked: Option<String>,
    /// The block the figures are at.
    pub height: u32,
    /// Its hash.
    pub hash: String,
    /// Its UTC day.
    pub date: String,
    /// Whether this is the synced tip.
    pub at_tip: bool,
    /// Total holdings, sats.
    pub total_sats: u64,
    /// Total, BTC with eight decimals.
    pub total_btc: String,
    /// Total for the headline (two decimals).
    pub total_btc_short: String,
    /// Sats at the listed (published or verified) addresses: what the state publishes as
    /// its reserve. Equals the total when nothing is private.
    pub published_sats: u64,
    /// The same, for the headline (two decimals).
    pub published_btc_short: String,
    /// Value of the published addresses in USD, headline form (`745.45M`), when priced.
    pub published_usd_short: Option<String>,
    /// Value in USD and the local currency.
    pub values: Vec<ValueRow>,
    /// Why a value is missing (no price or rate stored for the day).
    pub value_gaps: Vec<String>,
    /// The local currency's code.
    pub local_currency: String,
    /// Agencies with their holdings.
    pub agencies: Vec<AgencyRow>,
    /// Listed addresses, largest first.
    pub addresses: Vec<AddressRow>,
    /// Addresses counted but not listed (private tier), and their total.
    pub private_count: usize,
    /// Their BTC.
    pub private_btc: String,
    /// Holdings over time (SVG).
    pub holdings_svg: String,
    /// Value over time (SVG).
    pub value_svg: String,
    /// Acquisitions against internal transfers (SVG).
    pub flows_svg: String,
    /// Acquisitions against internal transfers (table).
    pub flows: Vec<FlowRow>,
    /// `quarter` or `month`.
    pub flow_period: &'static str,
    /// The latest signed statement at or before this block, if any.
    pub statement: Option<StatementInfo>,
}

/// Resolves `?at=`: a height, or a day (the last block at or before its end); the tip
/// when absent.
pub async fn resolve_at(store: &Store, at: Option<&str>) -> Result<BlockMeta, PortalError> {
    let tip = store.chain_tip().await?.ok_or_else(|| {
        PortalError::NotFound("no block is synced yet: the office has not published data".into())
    })?;
    let Some(at) = at.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(tip);
    };
    if at.chars().all(|c| c.is_ascii_digit()) {
        let h: u32 = at
            .parse()
            .map_err(|_| PortalError::BadRequest(format!("at={at}: not a block height")))?;
        if h > tip.height {
            return Err(PortalError::NotFound(format!(
                "block {h} is past the last synced block {}",
                tip.height
            )));
        }
        return store
            .block_at(h)
            .await?
            .ok_or_else(|| PortalError::NotFound(format!("block {h} is not in the index")));
    }
    let date = parse_date(at).map_err(|e| {
        PortalError::BadRequest(format!(
            "at={at}: give a day as YYYY-MM-DD or a block height ({e})"
        ))
    })?;
    let end = date
        .with_hms(23, 59, 59)
        .map_err(|e| PortalError::BadRequest(format!("at={at}: {e}")))?
        .assume_utc()
        .unix_timestamp();
    store
        .block_at_or_before_time(end)
        .await?
        .ok_or_else(|| PortalError::NotFound(format!("no synced block is at or before {at}")))
}

/// Builds the view of state `code` at `block`.
pub async fn build(
    store: &Store,
    state: &Entity,
    block: &BlockMeta,
    asked: Option<String>,
    asked_day: Option<Date>,
) -> Result<StateView, PortalError> {
    let code = state.code.clone();
    let entities = store.entities().await?;
    let scope_codes: BTreeSet<EntityCode> =
        store.entity_subtree(&code).await?.into_iter().collect();
    let in_scope: Vec<Entity> = entities
        .iter()
        .filter(|e| scope_codes.contains(&e.code))
        .cloned()
        .collect();
    let wallets = store.wallets(Some(&code)).await?;
    let ids: Vec<i64> = wallets.iter().map(|w| w.id).collect();
    let by_id: HashMap<i64, &tesoro_store::WalletRow> = wallets.iter().map(|w| (w.id, w)).collect();
    let network = store.network().0;
    let tip = store.chain_tip().await?;
    let utxos = if ids.is_empty() {
        Vec::new()
    } else {
        store.utxos_at(Some(block.height), Some(&ids)).await?
    };
    let statement = statements::latest(store, code.as_str(), block.height).await?;

    // Holdings now, per address and per agency.
    let mut per_addr: BTreeMap<String, (String, String, u64, usize, i64)> = BTreeMap::new();
    let mut own: BTreeMap<String, u64> = BTreeMap::new();
    let mut total: u64 = 0;
    for u in &utxos {
        let Some(w) = by_id.get(&u.wallet_id) else {
            continue;
        };
        let sats = u.value.to_sat();
        total += sats;
        *own.entry(w.entity.to_string()).or_default() += sats;
        let addr = script_address(&u.script_pubkey, network)
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("script {}", u.script_pubkey.to_hex_string()));
        let e = per_addr
            .entry(addr)
            .or_insert_with(|| (w.entity.to_string(), w.name.clone(), 0, 0, w.id));
        e.2 += sats;
        e.3 += 1;
    }
    let tiers = statement.as_ref().map(|s| &s.tiers);
    let configured = store.wallet_tiers().await?;
    let mut addresses = Vec::new();
    let mut private_count = 0;
    let mut private_sats = 0u64;
    for (address, (entity, wallet, sats, n, wallet_id)) in per_addr {
        let tier = match tiers.and_then(|t| t.get(&address)) {
            Some(t) => *t,
            // Not listed by the statement (private then, or new since): the office's tier of
            // its wallet today decides (`tesoro statement tier`; published by default).
            None => match configured.get(&wallet_id) {
                Some(WalletTier::Private) => Tier::Private,
                _ => Tier::Published,
            },
        };
        if tier == Tier::Private {
            private_count += 1;
            private_sats += sats;
            continue;
        }
        addresses.push(AddressRow {
            address,
            entity,
            wallet,
            tier: match tier {
                Tier::Verified => "verified",
                Tier::Published => "published",
                Tier::Private => "private",
            },
            btc: fmt::btc(sats),
            sats,
            utxos: n,
        });
    }
    addresses.sort_by(|a, b| b.sats.cmp(&a.sats).then(a.address.cmp(&b.address)));

    let parent_of = parents_within(&in_scope);
    let rolled = roll_up(&own, &parent_of);
    let agencies: Vec<AgencyRow> = tree_order(&in_scope)
        .into_iter()
        .map(|r| AgencyRow {
            code: r.entity.code.to_string(),
            name: r.entity.name.clone(),
            depth: r.depth,
            indent_em: format!("{:.1}", 0.6 + 1.5 * r.depth as f64),
            btc: fmt::btc(rolled.get(r.entity.code.as_str()).copied().unwrap_or(0)),
            usd: String::new(),
        })
        .collect();

    // Value now.
    let mut prices = store.price_book().await?;
    prices.allow_last_known = true;
    let day = asked_day.unwrap_or_else(|| date_of_unix(i64::from(block.time)));
    let local = local_currency(code.as_str());
    let mut currencies = vec!["USD".to_string()];
    if local != "USD" {
        currencies.push(local.to_string());
    }
    let published_sats = total - private_sats;
    let published_usd_short = prices
        .btc_price(day, "USD")
        .ok()
        .map(|q| fmt::money_short(value_of(published_sats, q.value)));
    let mut values = Vec::new();
    let mut value_gaps = Vec::new();
    for c in &currencies {
        match prices.btc_price(day, c) {
            Ok(q) => {
                let v = value_of(total, q.value);
                values.push(ValueRow {
                    currency: c.clone(),
                    price: fmt::money(q.value),
                    value: fmt::money(v),
                    value_short: fmt::money_short(v),
                    from: fmt_date(q.from),
                    stale: q.stale,
                    exact: tesoro_core::price::round_money(v),
                });
            }
            Err(e) => value_gaps.push(format!("{c}: {e}")),
        }
    }

    // Each agency's value at the same USD price (the reserve fund is usually one agency).
    let mut agencies = agencies;
    if let Ok(q) = prices.btc_price(day, "USD") {
        for a in &mut agencies {
            let sats = rolled.get(a.code.as_str()).copied().unwrap_or(0);
            a.usd = fmt::money_short(value_of(sats, q.value));
        }
    }

    // Over time.
    let history = if ids.is_empty() {
        Vec::new()
    } else {
        store.history(Some(&ids)).await?
    };
    let mut by_day: BTreeMap<Date, i64> = BTreeMap::new();
    for t in history.iter().filter(|t| t.height <= block.height) {
        *by_day.entry(date_of_unix(i64::from(t.time))).or_default() +=
            t.received as i64 - t.sent as i64;
    }
    let end_day = date_of_unix(i64::from(block.time));
    let (holdings_pts, value_pts) = over_time(&by_day, end_day, &prices);
    let holdings_svg = charts::lines(
        &format!("Holdings of {} over time, in BTC", state.name),
        "BTC",
        &[Line {
            name: "holdings (BTC)".into(),
            points: holdings_pts,
        }],
    );
    let value_svg = charts::lines(
        &format!("Value of the holdings of {} over time, in USD", state.name),
        "USD",
        &[Line {
            name: "value (USD)".into(),
            points: value_pts,
        }],
    );

    // Acquisitions against internal transfers.
    let ledger = ledger::load(store).await?;
    let scope: BTreeSet<i64> = in_scope.iter().map(|e| e.id).collect();
    let first = ledger
        .movements()
        .iter()
        .filter(|c| scope.contains(&c.movement.entity) && c.movement.height <= block.height)
        .map(|c| c.movement.date())
        .next();
    let (flows, bars, flow_period) = match first {
        Some(first) => flows(&ledger, &scope, first, end_day),
        None => (Vec::new(), Vec::new(), "month"),
    };
    let flows_svg = charts::grouped_bars(
        &format!(
            "Acquisitions and internal transfers of {} per {flow_period}, in BTC",
            state.name
        ),
        "BTC",
        &["acquisitions", "internal transfers"],
        &bars,
    );

    Ok(StateView {
        code: code.to_string(),
        name: state.name.clone(),
        asked,
        height: block.height,
        hash: block.hash.to_string(),
        date: fmt_date(end_day),
        at_tip: tip.is_some_and(|t| t.height == block.height),
        total_sats: total,
        total_btc: fmt::btc(total),
        total_btc_short: fmt::btc_short(total),
        published_sats,
        published_btc_short: fmt::btc_short(published_sats),
        published_usd_short,
        values,
        value_gaps,
        local_currency: local.to_string(),
        agencies,
        addresses,
        private_count,
        private_btc: fmt::btc(private_sats),
        holdings_svg,
        value_svg,
        flows_svg,
        flows,
        flow_period,
        statement,
    })
}

/// Dated values of one chart line.
type Points = Vec<(Date, f64)>;

/// Daily holdings as a step line (at most ~500 points) and their USD value.
fn over_time(by_day: &BTreeMap<Date, i64>, end: Date, prices: &PriceBook) -> (Points, Points) {
    let Some(first) = by_day.keys().next().copied() else {
        return (Vec::new(), Vec::new());
    };
    let end = end.max(first);
    let span = (end - first).whole_days().max(1);
    let step = (span / 500).max(1);
    let mut holdings = Vec::new();
    let mut value = Vec::new();
    let mut running: i64 = 0;
    let mut changes = by_day.iter().peekable();
    let mut d = first;
    loop {
        while let Some((cd, net)) = changes.peek() {
            if **cd > d {
                break;
            }
            running += **net;
            changes.next();
        }
        let sats = running.max(0) as u64;
        let btc = sats as f64 / 1e8;
        holdings.push((d, btc));
        if let Ok(q) = prices.btc_price(d, "USD") {
            if let Some(v) = value_of(sats, q.value).to_f64() {
                value.push((d, v));
            }
        }
        if d >= end {
            break;
        }
        d = (d + time::Duration::days(step)).min(end);
    }
    (holdings, value)
}

fn period_start(d: Date, quarters: bool) -> Date {
    let m = u8::from(d.month());
    let m = if quarters { (m - 1) / 3 * 3 + 1 } else { m };
    let month = time::Month::try_from(m).unwrap_or(time::Month::January);
    Date::from_calendar_date(d.year(), month, 1).unwrap_or(d)
}

fn next_period(d: Date, quarters: bool) -> Date {
    let months = if quarters { 3 } else { 1 };
    let total = d.year() * 12 + i32::from(u8::from(d.month())) - 1 + months;
    let month = time::Month::try_from((total % 12 + 1) as u8).unwrap_or(time::Month::January);
    Date::from_calendar_date(total / 12, month, 1).unwrap_or(d)
}

/// Per month (or quarter past three years): acquisitions by kind, internal transfers and
/// disposals, each from the accumulation report of that period.
fn flows(
    ledger: &ledger::Ledger,
    scope: &BTreeSet<i64>,
    first: Date,
    end: Date,
) -> (Vec<FlowRow>, Vec<Bars>, &'static str) {
    let quarters = (end - first).whole_days() > 3 * 366;
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut p = period_start(first, quarters);
    while p <= end {
        let next = next_period(p, quarters);
        let last = (next - time::Duration::days(1)).min(end);
        let r = accumulation(ledger.movements(), scope, p, last);
        let internal = r.internal_moved_sats + r.intra_state_in_sats;
        let label = if quarters {
            format!("{}-Q{}", p.year(), (u8::from(p.month()) - 1) / 3 + 1)
        } else {
            format!("{}-{:02}", p.year(), u8::from(p.month()))
        };
        bars.push(Bars {
            start: p,
            values: vec![r.acquired_sats as f64 / 1e8, internal as f64 / 1e8],
        });
        rows.push(FlowRow {
            period: label,
            acquired: fmt::btc(r.acquired_sats),
            kinds: r
                .acquisitions
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt::btc_short(*v)))
                .collect::<Vec<_>>()
                .join(", "),
            internal: fmt::btc(internal),
            disposed: fmt::btc(r.disposed_sats),
            unclassified: r.unclassified_movements,
        });
        p = next;
    }
    (rows, bars, if quarters { "quarter" } else { "month" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_step_by_month_and_quarter() {
        assert_eq!(
            period_start(date!(2024 - 05 - 17), true),
            date!(2024 - 04 - 01)
        );
        assert_eq!(
            period_start(date!(2024 - 05 - 17), false),
            date!(2024 - 05 - 01)
        );
        assert_eq!(
            next_period(date!(2024 - 11 - 01), true),
            date!(2025 - 02 - 01)
        );
        assert_eq!(
            next_period(date!(2024 - 12 - 01), false),
            date!(2025 - 01 - 01)
        );
        assert_eq!(local_currency("PK-PCC"), "PKR");
        assert_eq!(local_currency("SV"), "USD");
    }

    #[test]
    fn holdings_step_up_on_the_day_of_each_change() {
        let mut by_day = BTreeMap::new();
        by_day.insert(date!(2024 - 01 - 01), 100_000_000);
        by_day.insert(date!(2024 - 01 - 03), 50_000_000);
        let mut prices = PriceBook::default();
        prices.add_price(date!(2024 - 01 - 01), "USD", Decimal::from(40_000));
        prices.allow_last_known = true;
        let (h, v) = over_time(&by_day, date!(2024 - 01 - 04), &prices);
        assert_eq!(
            h,
            vec![
                (date!(2024 - 01 - 01), 1.0),
                (date!(2024 - 01 - 02), 1.0),
                (date!(2024 - 01 - 03), 1.5),
                (date!(2024 - 01 - 04), 1.5)
            ]
        );
        assert_eq!(v.last(), Some(&(date!(2024 - 01 - 04), 60_000.0)));
    }
}
