//! Partner exchange through the real binary: El Salvador's office exports a signed bundle of a
//! statement and a plan; Pakistan's office adds El Salvador as a partner and imports it.
//! Unknown-key, unsigned, altered and truncated bundles, bad keys and random damage are
//! refused with a clear error and store nothing; stored bundles cannot be changed, on SQLite
//! and on PostgreSQL.

mod office;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;
use sqlx::{AnyConnection, Connection, Executor};

use office::BIN;

/// An office folder, on SQLite or on a PostgreSQL database of its own.
struct Office {
    dir: tempfile::TempDir,
    db: Option<String>,
}

impl Office {
    fn new(db: Option<String>) -> Office {
        let o = Office {
            dir: tempfile::tempdir().unwrap(),
            db,
        };
        o.ok(&["init", "--network", "regtest"]);
        o
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_remove("TESORO_DB")
            .env_remove("TESORO_CONFIG")
            .args(args);
        if let Some(db) = &self.db {
            c.env("TESORO_DB", db);
        }
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tesoro {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "tesoro {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn bundle_count(&self) -> usize {
        self.json(&["bundle", "list", "--json"])
            .as_array()
            .unwrap()
            .len()
    }
}

fn plan_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans/pakistan-2000mw.toml")
}

const STATEMENT: &str = r#"{"format":"tesoro-statement/1","height":140,"addresses":[]}"#;

/// El Salvador: key, statement, bundle. Returns the bundle's path.
fn sv_exports(sv: &Office) -> PathBuf {
    sv.ok(&["key", "generate"]);
    std::fs::write(sv.path("statement.json"), STATEMENT).unwrap();
    let plan = plan_file();
    let out = sv.json(&[
        "bundle",
        "export",
        "--statement",
        "statement.json",
        "--plan",
        plan.to_str().unwrap(),
        "--issuer",
        "El Salvador, ONBTC",
        "-o",
        "to-pakistan.bundle",
        "--json",
    ]);
    assert_eq!(out["manifest"]["files"].as_array().unwrap().len(), 2);
    sv.path("to-pakistan.bundle")
}

fn exchange(pk: &Office) {
    let sv = Office::new(None);
    let bundle = sv_exports(&sv);
    let bytes = std::fs::read(&bundle).unwrap();

    // Unknown key: refused, nothing stored.
    let e = pk.fails(&["bundle", "import", bundle.to_str().unwrap()]);
    assert!(
        e.contains("no partner's") && e.contains("partner add") && e.contains("nothing was stored"),
        "{e}"
    );
    assert_eq!(pk.bundle_count(), 0);

    pk.ok(&[
        "partner",
        "add",
        "El Salvador Bitcoin Office",
        "--key",
        sv.path("office.key.pub").to_str().unwrap(),
    ]);
    let partners = pk.json(&["partner", "list", "--json"]);
    assert_eq!(partners[0]["name"], "El Salvador Bitcoin Office");
    let e = pk.fails(&[
        "partner",
        "add",
        "Someone else",
        "--key",
        sv.path("office.key.pub").to_str().unwrap(),
    ]);
    assert!(e.contains("already has this key"), "{e}");

    // Altered: one byte of the plan changed.
    let plan = std::fs::read(plan_file()).unwrap();
    let at = bytes
        .windows(plan.len())
        .position(|w| w == plan.as_slice())
        .unwrap();
    let mut altered = bytes.clone();
    altered[at + 10] ^= 0x20;
    std::fs::write(pk.path("altered.bundle"), &altered).unwrap();
    let e = pk.fails(&["bundle", "import", "altered.bundle"]);
    assert!(
        e.contains("altered.bundle") && e.contains("altered") && e.contains("pakistan-2000mw.toml"),
        "{e}"
    );
    // Truncated.
    std::fs::write(pk.path("cut.bundle"), &bytes[..bytes.len() - 700]).unwrap();
    let e = pk.fails(&["bundle", "import", "cut.bundle"]);
    assert!(e.contains("truncated"), "{e}");
    // Signed by another key that claims the partner's place: the manifest names the key, so
    // a forged manifest either names an unknown key or fails the signature.
    let manifest_at = 512;
    let mut forged = bytes.clone();
    let issuer = forged[manifest_at..]
        .windows(11)
        .position(|w| w == b"El Salvador")
        .unwrap();
    forged[manifest_at + issuer] = b'e';
    std::fs::write(pk.path("forged.bundle"), &forged).unwrap();
    let e = pk.fails(&["bundle", "import", "forged.bundle"]);
    assert!(e.contains("signature does not match"), "{e}");
    // Unsigned: the same files re-packed without manifest.sig, with the system's tar.
    let x = pk.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let st = Command::new("tar")
        .args(["-xf", bundle.to_str().unwrap(), "-C", x.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success(), "a bundle opens with tar");
    assert!(x.join("manifest.sig").exists() && x.join("files/statement.json").exists());
    let st = Command::new("tar")
        .current_dir(&x)
        .args([
            "--format=ustar",
            "-cf",
            "../unsigned.bundle",
            "manifest.json",
            "files/statement.json",
            "files/pakistan-2000mw.toml",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let e = pk.fails(&["bundle", "import", "unsigned.bundle"]);
    assert!(e.contains("not signed"), "{e}");
    assert_eq!(pk.bundle_count(), 0, "nothing half-stored");

    // The real one.
    let out = pk.ok(&["bundle", "import", bundle.to_str().unwrap()]);
    assert!(out.contains("verified and stored read-only"), "{out}");
    let again = pk.ok(&["bundle", "import", bundle.to_str().unwrap()]);
    assert!(again.contains("already imported"), "{again}");
    let list = pk.json(&["bundle", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let b = &list[0];
    assert_eq!(b["partner"], "El Salvador Bitcoin Office");
    assert_eq!(b["issuer"], "El Salvador, ONBTC");
    assert_eq!(b["files"][0]["name"], "statement.json");
    assert_eq!(b["files"][1]["kind"], "plan");
    assert_eq!(b["files"][1]["size"], plan.len());
    let table = pk.ok(&["bundle", "list"]);
    assert!(
        table.contains("statement.json, pakistan-2000mw.toml"),
        "{table}"
    );
    // What comes out is byte for byte what went in.
    let id = b["id"].as_i64().unwrap().to_string();
    pk.ok(&[
        "bundle",
        "extract",
        &id,
        "statement.json",
        "-o",
        "copy.json",
    ]);
    assert_eq!(
        std::fs::read_to_string(pk.path("copy.json")).unwrap(),
        STATEMENT
    );
    pk.ok(&[
        "bundle",
        "extract",
        &id,
        "pakistan-2000mw.toml",
        "-o",
        "plan.toml",
    ]);
    assert_eq!(std::fs::read(pk.path("plan.toml")).unwrap(), plan);
}

async fn assert_read_only(url: &str) {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(url).await.unwrap();
    for sql in [
        "UPDATE bundles SET issuer = 'someone else'",
        "DELETE FROM bundles",
        "UPDATE bundle_files SET name = 'other.json'",
        "DELETE FROM bundle_files",
    ] {
        let e = c.execute(sql).await.unwrap_err().to_string();
        assert!(e.contains("read-only"), "{sql}: {e}");
    }
    c.close().await.unwrap();
}

#[test]
fn exchange_on_sqlite() {
    let pk = Office::new(None);
    exchange(&pk);
    let url = format!("sqlite://{}", pk.path("tesoro.db").display());
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(assert_read_only(&url));
}

#[test]
fn exchange_on_postgres() {
    let admin = std::env::var("TESORO_TEST_PG")
        .expect("TESORO_TEST_PG is not set: run ./test.sh, which starts PostgreSQL and sets it");
    let name = format!("tesoro_bundle_{}", std::process::id());
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    let url = format!("{base}/{name}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pk = Office::new(Some(url.clone()));
    exchange(&pk);
    rt.block_on(assert_read_only(&url));
    rt.block_on(async {
        if let Ok(mut c) = AnyConnection::connect(&admin).await {
            let _ = c
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    });
}

#[test]
fn bad_partner_keys_are_refused() {
    let pk = Office::new(None);
    for (name, text, want) in [
        ("empty.pub", "", "32 bytes"),
        ("short.pub", "abcd", "32 bytes"),
        (
            "private.pub",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
            "neither a PEM",
        ),
        ("nokey.pub", &"zz".repeat(32), "neither a PEM"),
    ] {
        std::fs::write(pk.path(name), text).unwrap();
        let e = pk.fails(&["partner", "add", "X", "--key", name]);
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
    assert!(pk
        .json(&["partner", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random damage to a good bundle (a cut, a flipped byte, junk appended): import either
    /// refuses it and stores nothing, or (a flip in tar padding or an ignored header field)
    /// stores exactly the signed files.
    #[test]
    fn damaged_bundles_store_nothing(cut in 0usize..6000, flip in 0usize..6000, xor in 1u8..=255, junk in proptest::collection::vec(any::<u8>(), 0..600)) {
        let sv = Office::new(None);
        let bundle = sv_exports(&sv);
        let pk = Office::new(None);
        pk.ok(&["partner", "add", "SV", "--key", sv.path("office.key.pub").to_str().unwrap()]);
        let good = std::fs::read(&bundle).unwrap();
        let mut variants = vec![good[..cut.min(good.len() - 1)].to_vec()];
        let mut flipped = good.clone();
        let i = flip % good.len();
        flipped[i] ^= xor;
        variants.push(flipped);
        let mut longer = good.clone();
        longer.extend_from_slice(&junk);
        if !junk.is_empty() {
            variants.push(longer);
        }
        for (n, v) in variants.iter().enumerate() {
            let name = format!("v{n}.bundle");
            std::fs::write(pk.path(&name), v).unwrap();
            let out = pk.run(&["bundle", "import", &name, "--json"]);
            if out.status.success() {
                let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                prop_assert_eq!(&r["bundle"]["files"][0]["sha256"], &serde_json::json!(tesoro_core::bundle::sha256_hex(STATEMENT.as_bytes())));
            } else {
                let e = String::from_utf8_lossy(&out.stderr);
                prop_assert!(e.contains(&name) && e.contains("nothing was stored"), "{}", e);
                prop_assert!(!e.contains("panicked"), "{}", e);
            }
        }
        let n = pk.bundle_count();
        prop_assert!(n <= 1);
    }
}
