//! The portal end to end, in a real headless Chromium: a chain from the test-chain
//! generator, synced by the real `tesoro` binary into a SQLite file, the committed Coin
//! Metrics price history imported, the server started on loopback, and a browser reading
//! and clicking as a person would. A PNG of every page goes to
//! `<target dir>/e2e-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (./test.sh installs them); without them
//! these tests fail and say so, unless TESORO_SKIP_BROWSER=1.

mod e2e_support;
mod office;

use std::path::Path;

use e2e_support::Browser;
use office::{ok, synced_office_withholding, Office};
use rust_decimal::Decimal;
use tesoro_server::{create_user, Role, ServerConfig};
use tesoro_store::Store;
use tesoro_testchain::Expected;

/// A synced office with the server running on loopback.
struct Site {
    office: Office,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}

const ADMIN_PASSWORD: &str = "correct horse battery";
const VIEWER_PASSWORD: &str = "viewer password 1";

/// Generates the reserve scenario, registers its wallets under SV (all but the bare
/// addresses named in `withhold`), syncs with the real binary, imports the committed price
/// history, adds an admin and a viewer, and serves.
async fn site(withhold: &[&str]) -> Site {
    let office = synced_office_withholding("reserve.toml", "SV", withhold);
    let dir = office.dir.clone();
    let prices = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/market/btc-daily.csv");
    ok(
        &dir,
        &[
            "prices",
            "import",
            "coinmetrics",
            &prices.display().to_string(),
        ],
    );

    let url = format!("sqlite://{}", dir.join("tesoro.db").display());
    let store = Store::open(&url).await.unwrap();
    create_user(&store, "admin", ADMIN_PASSWORD, Role::Admin, None)
        .await
        .unwrap();
    create_user(&store, "viewer", VIEWER_PASSWORD, Role::Viewer, None)
        .await
        .unwrap();
    let (base, stop, server) = serve(store, url).await;
    Site {
        office,
        base,
        stop: Some(stop),
        server: Some(server),
    }
}

/// Serves the database at `url` on a free loopback port: base URL, stop switch, task.
async fn serve(
    store: Store,
    url: String,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = ServerConfig::new(url, addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.await;
        };
        if let Err(e) = tesoro_server::serve_on(listener, store, cfg, shutdown).await {
            panic!("server: {e}");
        }
    });
    (format!("http://{addr}"), tx, server)
}

/// The scenario's total at the tip, as the generator computed it (no scanner involved).
fn expected_total(e: &Expected, withhold: &[&str]) -> u64 {
    let tip = e.checkpoints.last().expect("a tip checkpoint");
    tip.balances
        .iter()
        .filter(|(k, _)| !withhold.contains(&k.as_str()))
        .map(|(_, v)| *v)
        .sum()
}

/// USD value of `sats` at the committed history's price on the tip block's day (regtest
/// block times are the scenario's start time plus height × interval).
fn usd_at_tip(sc_time: i64, sats: u64) -> (String, Decimal) {
    let day = tesoro_core::movement::date_of_unix(sc_time);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/market/btc-daily.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let points = tesoro_core::price::parse_coinmetrics("btc-daily.csv", &text).unwrap();
    let p = points
        .iter()
        .find(|p| p.date == day && p.currency == "USD")
        .unwrap_or_else(|| panic!("no USD price on {day} in the committed history"));
    (
        tesoro_core::price::fmt_date(day),
        tesoro_core::price::round_money(tesoro_core::price::value_of(sats, p.price)),
    )
}

async fn login(b: &Browser, site: &Site, user: &str, password: &str) {
    b.open(&site.url("/admin/login")).await;
    b.fill("#username", user).await;
    b.fill("#password", password).await;
    b.submit("#login-button").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_public_page_shows_the_synced_total_and_its_value() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let site = site(&[]).await;
    b.open(&site.url("/")).await;
    let index = b.page_text().await;
    assert!(index.contains("El Salvador"), "{index}");
    b.screenshot("public-index").await;

    b.submit("a[href='/state/SV']").await;
    let want = expected_total(&site.office.expected, &[]);
    let sats = b
        .attr("#total-btc .big", "data-sats")
        .await
        .unwrap_or_default();
    assert_eq!(sats, want.to_string(), "total on the page");
    let total_text = b.text("#total-btc").await;
    let whole = format!("{}.{:08}", want / 100_000_000, want % 100_000_000);
    assert!(
        total_text.contains(&whole),
        "{total_text} should show {whole}"
    );
    // Valued with the committed price history: the USD figure is there and names its day.
    let usd = b.text("#value-USD").await.replace(',', "");
    let (day, value) = usd_at_tip(site.office.tip_time, want);
    assert!(
        usd.contains(&format!("{value:.2} USD")),
        "{usd} should show {value:.2} USD"
    );
    assert!(
        usd.contains(&day),
        "{usd} should name the price's day {day}"
    );
    // Every listed address is 'published' until a statement exists, and the page says so.
    let page = b.page_text().await;
    assert!(page.contains("No signed statement exists yet"), "{page}");
    assert!(
        page.contains("tesoro statement verify statement.json"),
        "{page}"
    );
    let list = b.text("#address-list").await;
    for a in &site.office.expected.addresses {
        if site
            .office
            .expected
            .checkpoints
            .last()
            .unwrap()
            .addresses
            .get(&a.address)
            .copied()
            .unwrap_or(0)
            > 0
        {
            assert!(
                list.contains(&a.address),
                "{} missing from {list}",
                a.address
            );
        }
    }
    assert!(list.contains("published"));
    // Charts are inline SVG with an accessible name.
    let role = b.attr("svg.chart", "role").await;
    assert_eq!(role.as_deref(), Some("img"));
    b.screenshot("public-state").await;

    // A past day shows that day's figures.
    b.open(&site.url("/state/SV?at=not-a-day")).await;
    assert!(b.page_text().await.contains("YYYY-MM-DD"));
    b.screenshot("public-bad-date").await;
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_admin_adds_a_wallet_and_sees_it_after_a_sync() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let withheld = "seized";
    let site = site(&[withheld]).await;
    let addr = site
        .office
        .expected
        .addresses
        .iter()
        .find(|a| a.name == withheld)
        .unwrap()
        .address
        .clone();
    let want = *site
        .office
        .expected
        .checkpoints
        .last()
        .unwrap()
        .balances
        .get(withheld)
        .unwrap();
    assert!(
        want > 0,
        "the scenario's {withheld} address should hold coins at the tip"
    );

    // Not signed in: the admin area sends the browser to the sign-in form.
    b.open(&site.url("/admin/wallets")).await;
    assert!(
        b.path().await.starts_with("/admin/login"),
        "{}",
        b.path().await
    );
    b.screenshot("admin-login").await;
    // Signing in on that form comes back to the page asked for.
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.submit("#login-button").await;
    assert_eq!(b.path().await, "/admin/wallets");
    b.screenshot("admin-wallets").await;

    // A private key is refused with a clear error and is not echoed back.
    let wif = "cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy";
    b.fill("#name", "leaked").await;
    b.click("#kind-addresses").await;
    b.fill("#addresses", wif).await;
    b.submit("#add-wallet").await;
    let err = b.text("#wallet-error").await;
    assert!(err.to_lowercase().contains("private key"), "{err}");
    let page = b.page_text().await;
    assert!(!page.contains(wif), "the key was echoed back");
    b.screenshot("admin-wallet-refused").await;

    // So is an extended private key in the descriptor field, with the same code as the CLI.
    let xprv = "tprv8ZgxMBicQKsPd7Uf69XL1XwhmjHopUGep8GuEiJDZmbQz6o58LninorQAfcKZWARbtRtfnLcJ5MQ2AtHcQJCCRUcMRvmDUjyEmNUWwx8UbK";
    b.fill("#name", "leaked-xprv").await;
    b.click("#kind-descriptor").await;
    b.fill("#descriptor", &format!("wpkh({xprv}/84h/1h/0h/0/*)"))
        .await;
    b.submit("#add-wallet").await;
    let err = b.text("#wallet-error").await;
    assert!(err.to_lowercase().contains("private key"), "{err}");
    let html = b.source().await;
    assert!(!html.contains(xprv), "the xprv was echoed back in the page");
    assert!(
        !html.contains(&xprv[..40]),
        "part of the xprv was echoed back"
    );
    b.screenshot("admin-wallet-xprv-refused").await;

    // A descriptor whose scripts another wallet already watches is refused, naming it.
    let taken = &site.office.expected.wallets[0];
    b.fill("#name", "twice").await;
    b.click("#kind-descriptor").await;
    b.fill("#descriptor", &taken.external).await;
    b.fill("#change_descriptor", &taken.internal).await;
    b.submit("#add-wallet").await;
    let err = b.text("#wallet-error").await;
    assert!(
        err.contains("is already watched by wallet") && err.contains(&taken.name),
        "{err}"
    );
    assert!(err.contains("nothing was stored"), "{err}");
    b.screenshot("admin-wallet-overlap-refused").await;
    b.fill("#descriptor", "").await;
    b.fill("#change_descriptor", "").await;

    // The published address, added through the form.
    b.fill("#name", "seized-new").await;
    b.click("#kind-addresses").await;
    b.fill("#addresses", &addr).await;
    b.submit("#add-wallet").await;
    assert!(
        b.path().await.contains("done=wallet-added"),
        "{}",
        b.path().await
    );
    let list = b.text("#wallet-list").await;
    assert!(list.contains("seized-new"), "{list}");

    // The next sync catches the new wallet up; the page then shows its coins.
    ok(
        &site.office.dir,
        &[
            "sync",
            "--source",
            &format!("core-dir:{}", site.office.blocks.display()),
        ],
    );
    b.open(&site.url("/admin/wallets")).await;
    let list = b.text("#wallet-list").await;
    let row = list
        .lines()
        .find(|l| l.contains("seized-new"))
        .unwrap_or_else(|| panic!("no row for the new wallet in {list}"))
        .to_string();
    let btc = format!("{}.{:08}", want / 100_000_000, want % 100_000_000);
    assert!(row.contains(&btc), "{row} should show {btc}");
    b.screenshot("admin-wallets-after-sync").await;

    // The public page's total now includes it.
    b.open(&site.url("/state/SV")).await;
    let sats = b
        .attr("#total-btc .big", "data-sats")
        .await
        .unwrap_or_default();
    assert_eq!(sats, expected_total(&site.office.expected, &[]).to_string());

    // The other admin pages open.
    for (path, shot) in [
        ("/admin", "admin-home"),
        ("/admin/entities", "admin-entities"),
        ("/admin/sync", "admin-sync"),
        ("/admin/movements", "admin-movements"),
        ("/admin/records", "admin-records"),
        ("/admin/reports", "admin-reports"),
        (
            "/admin/reports/holdings?currency=USD",
            "admin-report-holdings",
        ),
        ("/admin/reports/accumulation", "admin-report-accumulation"),
        ("/admin/policies", "admin-policies"),
        ("/admin/statements", "admin-statements"),
        ("/admin/partners", "admin-partners"),
    ] {
        b.open(&site.url(path)).await;
        let text = b.page_text().await;
        assert!(!text.contains("Something went wrong"), "{path}: {text}");
        b.screenshot(shot).await;
    }
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_viewer_cannot_reach_admin_pages() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let site = site(&[]).await;
    login(&b, &site, "viewer", VIEWER_PASSWORD).await;
    let text = b.page_text().await;
    assert!(text.contains("Not allowed"), "{text}");
    b.screenshot("viewer-refused").await;
    for path in [
        "/admin/wallets",
        "/admin/movements",
        "/admin/reports/holdings",
    ] {
        b.open(&site.url(path)).await;
        let text = b.page_text().await;
        assert!(text.contains("Not allowed"), "{path}: {text}");
        assert!(!text.contains("Add a watch-only wallet"), "{path}");
    }
    // The public pages stay open to a viewer.
    b.open(&site.url("/state/SV")).await;
    assert!(b.page_text().await.contains("Total holdings"));
    // A wrong password is refused on the form, with the reason.
    b.open(&site.url("/admin/login")).await;
    b.fill("#username", "admin").await;
    b.fill("#password", "wrong password").await;
    b.submit("#login-button").await;
    assert!(b
        .text("#login-error")
        .await
        .contains("wrong user name or password"));
    b.screenshot("login-refused").await;
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_keyboard_alone_reaches_and_presses_the_sign_in_button() {
    use fantoccini::key::Key;
    let Some(b) = Browser::start().await else {
        return;
    };
    let site = site(&[]).await;
    b.open(&site.url("/admin/login")).await;
    let tab = char::from(Key::Tab).to_string();
    // The first stop is the skip link; then the site links, the fields, the button.
    let mut seen = Vec::new();
    for _ in 0..12 {
        let el = b.client.active_element().await.unwrap();
        el.send_keys(&tab).await.unwrap();
        let now = b.client.active_element().await.unwrap();
        let id = now.attr("id").await.unwrap().unwrap_or_default();
        let text = now.text().await.unwrap_or_default();
        seen.push(if id.is_empty() {
            text
        } else {
            format!("#{id}")
        });
        if id == "login-button" {
            break;
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("Skip to main content"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("#login-button"),
        "{seen:?}"
    );
    let i_user = seen.iter().position(|s| s == "#username").unwrap();
    let i_pass = seen.iter().position(|s| s == "#password").unwrap();
    assert!(i_user < i_pass, "{seen:?}");
    b.screenshot("keyboard-login-focus").await;

    // Type and press Enter on the focused button, keyboard only.
    b.open(&site.url("/admin/login")).await;
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    let pass = b.client.active_element().await.unwrap();
    pass.send_keys(&tab).await.unwrap();
    let button = b.client.active_element().await.unwrap();
    assert_eq!(
        button.attr("id").await.unwrap().as_deref(),
        Some("login-button")
    );
    b.press_and_wait(&char::from(Key::Enter).to_string()).await;
    assert_eq!(b.path().await, "/admin");
    b.close().await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_admin_uploads_a_records_file_all_or_nothing() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let site = site(&[]).await;
    login(&b, &site, "admin", ADMIN_PASSWORD).await;
    let files = tempfile::tempdir().unwrap();
    // Line 3 has a bad amount: nothing of the file is imported, and the error says where.
    let bad = files.path().join("march.csv");
    std::fs::write(
        &bad,
        "date,btc,entity,reference\n2024-03-01,1.5,SV,order-ok\n2024-03-02,lots,SV,order-bad\n",
    )
    .unwrap();
    b.open(&site.url("/admin/records")).await;
    b.choose_file("#file", &bad).await;
    b.submit("form[action='/admin/records'] button[type=submit]")
        .await;
    let err = b.text("#import-error").await;
    assert!(err.contains("march.csv: line 3, field btc"), "{err}");
    assert!(
        !b.page_text().await.contains("order-ok"),
        "a partial import"
    );
    b.screenshot("admin-records-upload-refused").await;
    // Fixed, the file imports and its rows are listed.
    let good = files.path().join("march-fixed.csv");
    std::fs::write(
        &good,
        "date,btc,entity,reference\n2024-03-01,1.5,SV,order-ok\n2024-03-02,2,SV,order-two\n",
    )
    .unwrap();
    b.choose_file("#file", &good).await;
    b.submit("form[action='/admin/records'] button[type=submit]")
        .await;
    assert!(
        b.path().await.contains("done=records-imported"),
        "{}",
        b.path().await
    );
    let page = b.page_text().await;
    assert!(
        page.contains("order-ok") && page.contains("order-two"),
        "{page}"
    );
    b.screenshot("admin-records-uploaded").await;
    // The import is in the audit log (the refused one is not), and the chain verifies.
    let log: serde_json::Value =
        serde_json::from_str(&ok(&site.office.dir, &["audit", "log", "--json"])).unwrap();
    let imports = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "records.import")
        .count();
    assert_eq!(imports, 1, "{log}");
    ok(&site.office.dir, &["audit", "verify"]);
    b.close().await;
    site.stop().await;
}

/// The demo's El Salvador page on 2025-07-17 heads with the published reserve fund (the
/// reported 6,238 BTC, $745.45M at Coin Metrics' price that day) and shows everything the
/// state's wallets hold beside it, saying what the difference is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_demo_headline_is_the_published_reserve_fund_beside_all_state_wallets() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    ok(
        tmp.path(),
        &["demo", "--no-serve", "--dir", "demo", "--json"],
    );
    let dir = tmp.path().join("demo");
    let config = dir.join("tesoro.toml");
    let all: serde_json::Value = serde_json::from_str(&ok(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "balance",
            "--entity",
            "SV",
            "--at",
            "2025-07-17",
            "--json",
        ],
    ))
    .unwrap();
    let all_sats = all["total_sats"].as_u64().unwrap();
    let url = format!("sqlite://{}", dir.join("tesoro.db").display());
    let store = Store::open(&url).await.unwrap();
    let (base, stop, server) = serve(store, url).await;

    b.open(&format!("{base}/state/SV?at=2025-07-17")).await;
    let fund = b.text("#published-btc").await;
    assert!(fund.contains("6,238.00 BTC"), "{fund}");
    assert!(fund.contains("745.45M USD"), "{fund}");
    assert!(fund.contains("2025-07-17"), "{fund}");
    assert_eq!(
        b.attr("#published-btc .big", "data-sats").await.as_deref(),
        Some("623799999576")
    );
    // All the state's wallets: the fund plus the 36 BTC consolidated into it after that day
    // (the IMF: no other stock), about the 6,274 BTC reported split in August.
    let total = b.text("#all-btc").await;
    assert!(total.contains("6,274.00 BTC"), "{total}");
    assert_eq!(
        b.attr("#total-btc .big", "data-sats").await,
        Some(all_sats.to_string())
    );
    assert!(
        (627_399_000_000..=627_400_000_000).contains(&all_sats),
        "{all_sats}"
    );
    let note = b.text("#what-counts").await;
    assert!(note.contains("private tier"), "{note}");
    b.screenshot("demo-state-sv-2025-07-17").await;

    // After the consolidation and the split, the published addresses hold everything: one
    // figure again.
    b.open(&format!("{base}/state/SV")).await;
    assert!(!b.source().await.contains("id=\"published-btc\""));
    b.screenshot("demo-state-sv-tip").await;
    b.close().await;
    let _ = stop.send(());
    let _ = server.await;
}
