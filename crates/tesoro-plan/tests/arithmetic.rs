//! Mining arithmetic checked by hand against FACTS.md and the Coin Metrics history.

mod common;
use common::*;
use tesoro_plan::mining::{self, MiningSchedule};
use tesoro_plan::network::{self, TWO_32};

#[test]
fn two_thousand_mw_all_day_is_48_gwh_and_each_cent_of_gap_costs_480k_usd() {
    let plan = mining(&mining_text(2000.0, 20.0, 0.05, 0.06, false));
    let day = plan.plant_day(d("2024-01-01"));
    // 2,000 MW × 24 h = 48,000 MWh = 48 GWh = 48,000,000 kWh.
    assert!(
        (day.energy_kwh - 48_000_000.0).abs() < 1e-6,
        "{}",
        day.energy_kwh
    );
    // Tariff gap $0.01/kWh × 48,000,000 kWh = $480,000 a day.
    assert!(
        (day.subsidy_usd - 480_000.0).abs() < 1e-6,
        "{}",
        day.subsidy_usd
    );
    assert!((day.elec_paid_usd - 2_400_000.0).abs() < 1e-6);
    assert!((day.elec_recovery_usd - 2_880_000.0).abs() < 1e-6);
    // 2,000 MW at 20 J/TH = 2e9 W / 20 W per TH/s = 1e8 TH/s = 100 EH/s.
    assert!((day.hashrate_ths - 1e8).abs() < 1e-3);
}

#[test]
fn subsidy_in_local_currency_converts_at_the_plan_rate() {
    let text = mining_text(2000.0, 20.0, 0.0, 0.0, false).replace(
        "currency = \"USD\"\npaid_per_kwh = 0\ncost_recovery_per_kwh = 0",
        "currency = \"PKR\"\npaid_per_kwh = 23\ncost_recovery_per_kwh = 34\nlocal_per_usd = 282",
    );
    let plan = mining(&text);
    let day = plan.plant_day(d("2021-01-01"));
    // 48,000,000 kWh × PKR 11 = PKR 528,000,000, at 282 PKR/USD.
    assert!((day.subsidy_local - 528_000_000.0).abs() < 1e-3);
    assert!((day.subsidy_usd - 528_000_000.0 / 282.0).abs() < 1e-6);
    // PKR 23/kWh at 282/USD is $0.0816/kWh, i.e. "about $0.08/kWh".
    assert!((day.elec_paid_usd / day.energy_kwh - 0.0816).abs() < 0.0001);
}

#[test]
fn pue_uptime_and_curtailment_scale_hashrate_and_energy() {
    let text = mining_text(1000.0, 20.0, 0.05, 0.05, false)
        .replace("pue = 1.0", "pue = 1.25")
        .replace("uptime_pct = 100", "uptime_pct = 90\n[[power.curtailment]]\nfrom = \"12-01\"\nto = \"02-28\"\nhours_off_per_day = 6");
    let plan = mining(&text);
    let summer = plan.plant_day(d("2024-07-01"));
    let winter = plan.plant_day(d("2024-01-15"));
    // Summer: 1,000 MW × 24 h × 0.9 = 21,600 MWh; IT power 800 MW → 40 EH/s × 0.9.
    assert!((summer.energy_kwh - 21_600_000.0).abs() < 1e-3);
    assert!((summer.hashrate_ths - 4e7 * 0.9).abs() < 1e-3);
    // Winter (season wraps over New Year): 6 of 24 hours off.
    assert!((winter.energy_kwh - 21_600_000.0 * 0.75).abs() < 1e-3);
}

#[test]
fn network_hashrate_is_difficulty_times_2_32_over_600() {
    assert!((network::hashrate_from_difficulty(1.0) - 4_294_967_296.0 / 600.0).abs() < 1e-9);
    let h = history();
    // PROVENANCE.md: difficulty 126.27 T from 2025-07-13 to 07-25.
    let day = h.day("test", d("2025-07-17")).unwrap();
    assert!(
        (day.difficulty() / 1e12 - 126.27).abs() < 0.01,
        "{}",
        day.difficulty()
    );
    let eh = network::hashrate_from_difficulty(day.difficulty()) / 1e18;
    assert!((eh - 126.27e12 * TWO_32 / 600.0 / 1e18).abs() < 0.1, "{eh}");
    // And the round trip.
    let d = network::difficulty_from_hashrate(network::hashrate_from_difficulty(day.difficulty()));
    assert!((d / day.difficulty() - 1.0).abs() < 1e-12);
}

#[test]
fn hashprice_follows_the_facts_formula_and_matches_luxor_on_2024_07_04() {
    let h = history();
    let day = h.day("test", d("2024-07-04")).unwrap();
    let diff = day.hashrate_ths * 1e12 * 86400.0 / (TWO_32 * day.blocks);
    let by_hand =
        1e15 * 86400.0 * (3.125 + day.fees_btc / day.blocks) * day.price_usd / (diff * TWO_32);
    assert!((day.hashprice() - by_hand).abs() < 1e-9);
    // Luxor Hashrate Index: $44.84/PH/day on 2024-07-04. Ours: within 0.5 %.
    let rel = (day.hashprice() - 44.84).abs() / 44.84;
    assert!(
        rel < 0.005,
        "ours {:.2} vs 44.84 ({:.2} %)",
        day.hashprice(),
        rel * 100.0
    );
}

#[test]
fn november_2025_hashprice_low_is_near_the_published_38_2() {
    let h = history();
    let nov = h.range("test", d("2025-11-01"), d("2025-11-30")).unwrap();
    let low = nov
        .iter()
        .map(|d| d.hashprice())
        .fold(f64::INFINITY, f64::min);
    // Published: "about $38.2" at the November 2025 low. Our daily low (2025-11-22, price
    // $84.8k at Coin Metrics' reference time) is $35.24, 7.8 % lower; a daily close against
    // an index sampled at other times of day explains gaps of this size. Assert within 10 %.
    let rel = (low - 38.2).abs() / 38.2;
    assert!(rel < 0.10, "ours {low:.2} vs 38.2");
    // Every day of the month stays in the published neighbourhood ($35–$46).
    assert!(nov.iter().all(|d| (34.0..46.0).contains(&d.hashprice())));
}

#[test]
fn halving_at_1_050_000() {
    assert_eq!(network::subsidy_btc(839_999), 6.25);
    assert_eq!(network::subsidy_btc(840_000), 3.125);
    assert_eq!(network::subsidy_btc(1_049_999), 3.125);
    assert_eq!(network::subsidy_btc(1_050_000), 1.5625);
    assert_eq!(network::next_halving(905_878), 1_050_000);
    // A day whose 144 blocks straddle the halving: 100 at 3.125, 44 at 1.5625.
    let m = network::mean_subsidy(1_049_900.0, 144.0);
    assert!((m - (100.0 * 3.125 + 44.0 * 1.5625) / 144.0).abs() < 1e-12);
}

#[test]
fn a_projection_halves_the_reward_when_height_1_050_000_is_reached() {
    let h = history();
    let mut plan = mining(&mining_text(100.0, 20.0, 0.05, 0.05, false));
    plan.projection.fees_btc_per_block = Some(0.0);
    let run = mining::project(&plan, &h, d("2025-12-29"), 5 * 365).unwrap();
    let start_h = run.days[0].height;
    let t = ((1_050_000.0 - start_h) / 144.0).floor() as usize;
    assert_eq!(run.days[t - 1].reward_per_block, 3.125);
    assert_eq!(run.days[t + 1].reward_per_block, 1.5625);
    // FACTS.md: expected around April 2028.
    let when = run.days[t].date;
    assert_eq!((when.year(), u8::from(when.month())), (2028, 4), "{when}");
}

#[test]
fn block_heights_reconstructed_from_blkcnt_agree_with_the_chain() {
    let h = history();
    // Block 840,000 was mined on 2024-04-20 at 00:09 UTC.
    let day = h.day("test", d("2024-04-20")).unwrap();
    assert!((day.height - 840_000.0).abs() <= 10.0, "{}", day.height);
    // Block 630,000 was mined on 2020-05-11 at 19:23 UTC: the day starts ~120 blocks before.
    let day = h.day("test", d("2020-05-11")).unwrap();
    assert!(
        day.height < 630_000.0 && day.height > 629_800.0,
        "{}",
        day.height
    );
    // Issuance implied by the heights matches IssTotNtv on every day, halving days included.
    // (On 2024-04-19, BlkCnt 151 with 931.25 BTC issued reads as 147 blocks at 6.25 and 4 at
    // 3.125, which puts 2024-04-20 at 840,004: four blocks late, see above.)
    let bad: Vec<_> = h
        .days()
        .iter()
        .filter(|d| {
            (network::mean_subsidy(d.height, d.blocks) * d.blocks - d.issuance_btc).abs() > 1e-6
        })
        .map(|d| d.date)
        .collect();
    assert!(bad.is_empty(), "days whose issuance disagrees: {bad:?}");
}

#[test]
fn plant_btc_per_day_by_hand_and_its_own_effect_on_difficulty() {
    let h = history();
    let from = d("2025-06-01");
    let to = d("2025-07-31");
    let free = mining(&mining_text(1000.0, 20.0, 0.05, 0.05, false));
    let fed = mining(&mining_text(1000.0, 20.0, 0.05, 0.05, true));
    let a = mining::backtest(&free, &h, from, to).unwrap();
    let b = mining::backtest(&fed, &h, from, to).unwrap();
    // By hand, day 0: 50 EH/s × 86400 / (D × 2^32) × (3.125 + fees per block).
    let d0 = h.day("t", from).unwrap();
    let by_hand = 5e19 * 86400.0 / (d0.difficulty() * TWO_32) * (3.125 + d0.fees_btc / d0.blocks);
    assert!(
        (a.days[0].btc_mined - by_hand).abs() < 1e-9,
        "{} vs {by_hand}",
        a.days[0].btc_mined
    );
    // Before the first retarget the plant does not raise difficulty …
    assert_eq!(a.days[0].btc_mined, b.days[0].btc_mined);
    // … after it, difficulty includes 50 EH/s × 600 / 2^32 and output falls.
    let last = a.days.len() - 1;
    let add = b.days[last].difficulty - a.days[last].difficulty;
    assert!((add - 5e19 * 600.0 / TWO_32).abs() / add < 1e-9);
    assert!(b.total.btc_mined < a.total.btc_mined);
    let sched = MiningSchedule::new(&fed, &[from], &[d0.height]);
    assert_eq!(sched.difficulty_add[0], 0.0);
}
