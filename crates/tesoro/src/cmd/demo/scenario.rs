//! The demo's scenario files → one test-chain scenario plus what the office registers:
//! states and agencies, which agency owns each wallet, counterparties, policies, records, the
//! IMF-style programme period, and mining payouts computed from a plan with tesoro-plan.
//!
//! A state file is a test-chain scenario part (`[[wallet]]`, `[[address]]`, `[[party]]`,
//! `[[event]]`) with a few more keys the generator does not see: `entity` on wallets and
//! addresses, `counterparty`/`incoming`/`outgoing` on parties, and the tables `[state]`,
//! `[[entity]]`, `[programme]`, `[[rule]]`, `[records]`, `[mining]`.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tesoro_testchain::Scenario;

use super::inputs::Inputs;

/// Everything the demo builds, read from the scenario files.
pub struct DemoSpec {
    /// The merged chain scenario (every state's owners, parties and events).
    pub scenario: Scenario,
    /// The states, in the order of `chain.toml`'s `states`.
    pub states: Vec<StateSpec>,
    /// Day of the signed statements.
    pub statement_date: String,
}

/// One state's file.
pub struct StateSpec {
    /// File name.
    pub file: String,
    /// `[state]`.
    pub state: StateHeader,
    /// Agencies below the state.
    pub entities: Vec<EntitySpec>,
    /// (wallet or address name, owning entity code), in file order.
    pub owners: Vec<Owner>,
    /// Outside parties with their counterparty rule.
    pub parties: Vec<PartyInfo>,
    /// The period of the accumulation test.
    pub programme: Option<Programme>,
    /// Policy rules (the `[[rule]]` tables, checked by tesoro_core::policy).
    pub rules: Vec<toml::Table>,
    /// Record files: (name as shown, text).
    pub records: Vec<(String, String)>,
    /// Mining payouts from a plan.
    pub mining: Option<Mining>,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateHeader {
    /// Entity code of the state.
    pub code: String,
    /// Name.
    pub name: String,
    /// Local currency (values are shown in USD and in it).
    pub currency: String,
    /// The wallets and addresses the state publishes as its reserve (what its tracker
    /// shows); the state may hold more in other agencies' wallets.
    #[serde(default)]
    pub reserve: Vec<String>,
}

/// `[[entity]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent code.
    pub parent: String,
}

/// A wallet or address and its agency.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Wallet or address name in the scenario.
    pub name: String,
    /// Owning entity.
    pub entity: String,
    /// A bare address (published) rather than a descriptor wallet.
    pub bare: bool,
}

/// An outside party and how its payments are classified.
#[derive(Debug, Clone)]
pub struct PartyInfo {
    /// Party name in the scenario.
    pub name: String,
    /// Counterparty name in the rules.
    pub counterparty: String,
    /// Kind of value received from it.
    pub incoming: Option<String>,
    /// Kind of value sent to it.
    pub outgoing: Option<String>,
}

/// `[programme]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Name.
    pub name: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Records {
    #[serde(default)]
    files: Vec<String>,
}

/// `[mining]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MiningFile {
    plan: String,
    to: String,
    pool: String,
    #[serde(default)]
    sell_to: Option<String>,
    from: String,
    until: String,
}

/// Mining payouts: the plan's daily BTC, as the pool pays them.
#[derive(Debug, Clone, Serialize)]
pub struct Mining {
    /// Plan file as named.
    pub plan_file: String,
    /// Plan name.
    pub plan: String,
    /// Payout address name.
    pub to: String,
    /// First and last day.
    pub from: String,
    /// Last day.
    pub until: String,
    /// Each day: (date, sats mined after the pool fee, sats sold to cover costs).
    pub days: Vec<(String, u64, u64)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    state: StateHeader,
    #[serde(default, rename = "entity")]
    entities: Vec<EntitySpec>,
    #[serde(default, rename = "wallet")]
    wallets: Vec<toml::Table>,
    #[serde(default, rename = "address")]
    addresses: Vec<toml::Table>,
    #[serde(default, rename = "party")]
    parties: Vec<toml::Table>,
    #[serde(default, rename = "event")]
    events: Vec<toml::Value>,
    #[serde(default)]
    programme: Option<Programme>,
    #[serde(default, rename = "rule")]
    rules: Vec<toml::Table>,
    #[serde(default)]
    records: Records,
    #[serde(default)]
    mining: Option<MiningFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoTable {
    states: Vec<String>,
    statement_date: String,
}

fn take_string(t: &mut toml::Table, key: &str, file: &str, what: &str) -> anyhow::Result<String> {
    match t.remove(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(_) => bail!("{file}: {what}: {key} must be a string"),
        None => bail!("{file}: {what}: {key} is missing"),
    }
}

fn opt_string(
    t: &mut toml::Table,
    key: &str,
    file: &str,
    what: &str,
) -> anyhow::Result<Option<String>> {
    match t.remove(key) {
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => bail!("{file}: {what}: {key} must be a string"),
        None => Ok(None),
    }
}

fn name_of(t: &toml::Table) -> String {
    t.get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string()
}

/// Reads `chain.toml` and the state files it lists.
pub fn load(inputs: &mut Inputs) -> anyhow::Result<DemoSpec> {
    let chain_name = inputs.display("chain.toml");
    let mut chain: toml::Table = toml::from_str(&inputs.file("chain.toml")?)
        .map_err(|e| anyhow::anyhow!("{chain_name}: {}", e.to_string().trim_end()))?;
    let demo: DemoTable = chain
        .remove("demo")
        .with_context(|| format!("{chain_name}: no [demo] table (states, statement_date)"))?
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{chain_name}: [demo]: {e}"))?;
    for key in ["wallet", "address", "party", "event"] {
        if chain.contains_key(key) {
            bail!("{chain_name}: [[{key}]] belongs in a state file, not in chain.toml");
        }
    }
    let mut wallets = Vec::new();
    let mut addresses = Vec::new();
    let mut parties = Vec::new();
    let mut events = Vec::new();
    let mut states = Vec::new();
    for file in &demo.states {
        let shown = inputs.display(file);
        let sf: StateFile = toml::from_str(&inputs.file(file)?)
            .map_err(|e| anyhow::anyhow!("{shown}: {}", e.to_string().trim_end()))?;
        let mut owners = Vec::new();
        for (list, out, bare) in [
            (sf.wallets, &mut wallets, false),
            (sf.addresses, &mut addresses, true),
        ] {
            for mut t in list {
                let what = format!(
                    "{} {:?}",
                    if bare { "address" } else { "wallet" },
                    name_of(&t)
                );
                let entity = take_string(&mut t, "entity", &shown, &what)?;
                owners.push(Owner {
                    name: name_of(&t),
                    entity,
                    bare,
                });
                out.push(toml::Value::Table(t));
            }
        }
        let mut infos = Vec::new();
        for mut t in sf.parties {
            let what = format!("party {:?}", name_of(&t));
            let counterparty = take_string(&mut t, "counterparty", &shown, &what)?;
            let incoming = opt_string(&mut t, "incoming", &shown, &what)?;
            let outgoing = opt_string(&mut t, "outgoing", &shown, &what)?;
            infos.push(PartyInfo {
                name: name_of(&t),
                counterparty,
                incoming,
                outgoing,
            });
            parties.push(toml::Value::Table(t));
        }
        events.extend(sf.events);
        let mining = match sf.mining {
            Some(m) => {
                let mined = mining_days(inputs, &m, &shown)?;
                for (date, sats, sold) in &mined.days {
                    events.push(payout_event(date, &m.to, &m.pool, *sats));
                    if let (Some(to), true) = (&m.sell_to, *sold > 0) {
                        events.push(sale_event(date, &m.to, to, *sold));
                    }
                }
                Some(mined)
            }
            None => None,
        };
        let mut records = Vec::new();
        for f in &sf.records.files {
            records.push((inputs.display(f), inputs.file(f)?));
        }
        states.push(StateSpec {
            file: shown,
            state: sf.state,
            entities: sf.entities,
            owners,
            parties: infos,
            programme: sf.programme,
            rules: sf.rules,
            records,
            mining,
        });
    }
    chain.insert("wallet".into(), toml::Value::Array(wallets));
    chain.insert("address".into(), toml::Value::Array(addresses));
    chain.insert("party".into(), toml::Value::Array(parties));
    chain.insert("event".into(), toml::Value::Array(events));
    let scenario: Scenario =
        toml::Value::Table(chain)
            .try_into()
            .map_err(|e: toml::de::Error| {
                anyhow::anyhow!(
                    "the scenario files ({}) do not make a test-chain scenario: {}",
                    demo.states.join(", "),
                    e.to_string().trim_end()
                )
            })?;
    scenario
        .validate()
        .map_err(|e| anyhow::anyhow!("scenario files: {e}"))?;
    Ok(DemoSpec {
        scenario,
        states,
        statement_date: demo.statement_date,
    })
}

fn payout_event(date: &str, to: &str, pool: &str, sats: u64) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("date".into(), date.into());
    t.insert("kind".into(), "receive".into());
    t.insert("from".into(), pool.into());
    t.insert("to".into(), to.into());
    t.insert("amount_sat".into(), toml::Value::Integer(sats as i64));
    toml::Value::Table(t)
}

fn sale_event(date: &str, from: &str, to: &str, sats: u64) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("date".into(), date.into());
    t.insert("kind".into(), "send".into());
    t.insert("from".into(), from.into());
    t.insert("to".into(), to.into());
    t.insert("amount_sat".into(), toml::Value::Integer(sats as i64));
    toml::Value::Table(t)
}

/// BTC as whole sats, the way the demo turns a plan's daily BTC into a payout.
pub fn to_sats(btc: f64) -> u64 {
    (btc * 1e8).round().max(0.0) as u64
}

/// Runs the plan over the committed history (a backtest, as `tesoro plan mine --backtest`)
/// and keeps each day's BTC.
fn mining_days(inputs: &mut Inputs, m: &MiningFile, file: &str) -> anyhow::Result<Mining> {
    let (plan_name, text) = inputs.plan(&m.plan)?;
    let plan = match tesoro_plan::parse_plan(&text, &plan_name, None)? {
        tesoro_plan::Plan::Mining(p) => p,
        _ => bail!("{file}: [mining] plan {plan_name} is not a mining plan"),
    };
    let history = tesoro_plan::History::embedded()?;
    let date = |s: &str, field: &str| {
        tesoro_core::price::parse_date(s)
            .map_err(|e| anyhow::anyhow!("{file}: [mining] {field}: {e}"))
    };
    let (from, until) = (date(&m.from, "from")?, date(&m.until, "until")?);
    // As `tesoro plan mine --backtest --from`: the plant starts on `from`.
    let plan = plan.rebased(from)?;
    let run = tesoro_plan::mining::backtest(&plan, &history, from, until)
        .with_context(|| format!("{file}: running {plan_name}"))?;
    let days = run
        .days
        .iter()
        .map(|d| {
            (
                tesoro_core::price::fmt_date(d.date),
                to_sats(d.btc_mined),
                to_sats(d.btc_sold),
            )
        })
        .collect();
    Ok(Mining {
        plan_file: plan_name,
        plan: run.plan,
        to: m.to.clone(),
        from: m.from.clone(),
        until: m.until.clone(),
        days,
    })
}
