//! The README's session, run through the real binary on a SQLite file and on a real
//! PostgreSQL server; private keys refused everywhere and found nowhere afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::{AnyConnection, Connection, Executor};

const BIN: &str = env!("CARGO_BIN_EXE_tesoro");

// BIP-84's account key for "abandon … about" (xpub form) and its first address.
const XPUB84: &str = "xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V";
const FIRST84: &str = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu";
const ES_COLD: &str = "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo";

struct Env {
    dir: tempfile::TempDir,
    db: Option<String>,
}

impl Env {
    fn sqlite() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            db: None,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path()).args(args);
        c.env_remove("TESORO_DB")
            .env_remove("TESORO_CONFIG")
            .env_remove("RUST_LOG");
        if let Some(db) = &self.db {
            c.env("TESORO_DB", db);
        }
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tesoro {args:?} failed: {}",
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
}

async fn pg_env() -> (Env, String, String) {
    sqlx::any::install_default_drivers();
    let admin = std::env::var("TESORO_TEST_PG")
        .expect("TESORO_TEST_PG is not set: run ./test.sh, which starts PostgreSQL and sets it");
    let name = format!(
        "tesoro_cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    let url = format!("{base}/{name}");
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        db: Some(url),
    };
    (env, admin, name)
}

async fn drop_pg(admin: &str, name: &str) {
    if let Ok(mut c) = AnyConnection::connect(admin).await {
        let _ = c
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}

fn readme_session(env: &Env) {
    let out = env.ok(&["init", "--network", "mainnet"]);
    assert!(out.contains("initialized"), "{out}");
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    env.ok(&[
        "entity",
        "add",
        "Bitcoin Office",
        "--code",
        "SV-ONBTC",
        "--parent",
        "SV",
    ]);
    env.ok(&["entity", "add", "Pakistan", "--code", "PK"]);
    let tree = env.ok(&["entity", "list"]);
    let sv = tree.find("SV ").unwrap();
    let onbtc = tree.find("└ SV-ONBTC").unwrap();
    assert!(onbtc > sv, "{tree}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["entity", "list", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[2]["code"], "SV-ONBTC");
    assert_eq!(json[2]["depth"], 1);

    let desc = format!("wsh(sortedmulti(2,[d34db33f/48h/0h/0h/2h]{XPUB84}/0/*,[73c5da0a/84h/0h/0h]{XPUB84}/1/*,[00000001/48h/0h/0h/2h]{XPUB84}/2/*))");
    let change = format!("wsh(sortedmulti(2,[d34db33f/48h/0h/0h/2h]{XPUB84}/3/*,[73c5da0a/84h/0h/0h]{XPUB84}/4/*,[00000001/48h/0h/0h/2h]{XPUB84}/5/*))");
    let out = env.ok(&[
        "wallet",
        "add",
        "--entity",
        "SV-ONBTC",
        "--name",
        "cold-1",
        "--descriptor",
        &desc,
        "--change-descriptor",
        &change,
        "--gap-limit",
        "100",
        "--birth-height",
        "820000",
    ]);
    assert!(out.contains("checksum computed"), "{out}");
    assert!(out.contains("2-of-3 multisig"), "{out}");
    env.ok(&[
        "wallet",
        "add",
        "--entity",
        "SV-ONBTC",
        "--name",
        "published",
        "--addresses",
        &format!("{ES_COLD},bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"),
    ]);
    std::fs::write(
        env.path("addresses.txt"),
        format!(
            "# Pakistan's published addresses\n{FIRST84}\n1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n"
        ),
    )
    .unwrap();
    env.ok(&[
        "wallet",
        "add",
        "--entity",
        "PK",
        "--name",
        "published",
        "--addresses-file",
        "addresses.txt",
    ]);

    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["wallet", "list", "--entity", "SV", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["cold-1", "published"]);
    let table = env.ok(&["wallet", "list"]);
    assert!(
        table.contains("PK") && table.contains("2 published addresses"),
        "{table}"
    );

    let show: serde_json::Value =
        serde_json::from_str(&env.ok(&["wallet", "show", "cold-1", "--json"])).unwrap();
    assert_eq!(show["descriptor"]["policy"], "2-of-3 multisig");
    assert_eq!(show["descriptor"]["script_type"], "wsh");
    assert_eq!(show["gap_limit"], 100);
    assert_eq!(show["descriptor"]["keys"][0]["fingerprint"], "d34db33f");
    assert_eq!(
        show["descriptor"]["keys"][0]["origin_path"],
        "m/48'/0'/0'/2'"
    );
    assert!(show["descriptor"]["external"]
        .as_str()
        .unwrap()
        .contains('#'));

    // "published" exists under two entities: the bare name is ambiguous.
    let err = env.fails(&["wallet", "show", "published"]);
    assert!(err.contains("ENTITY/name"), "{err}");
    let pk: serde_json::Value =
        serde_json::from_str(&env.ok(&["wallet", "show", "PK/published", "--json"])).unwrap();
    assert_eq!(pk["addresses"][0]["address"], FIRST84);

    let addrs: serde_json::Value = serde_json::from_str(&env.ok(&[
        "wallet",
        "addresses",
        "cold-1",
        "--from",
        "5",
        "--count",
        "3",
        "--change",
        "--json",
    ]))
    .unwrap();
    let addrs = addrs.as_array().unwrap();
    assert_eq!(addrs.len(), 3);
    assert_eq!(addrs[0]["index"], 5);
    assert_eq!(addrs[0]["keychain"], "internal");
    assert!(addrs[0]["address"].as_str().unwrap().starts_with("bc1q"));
    assert_eq!(addrs[0]["address"].as_str().unwrap().len(), 62);
    let table = env.ok(&["wallet", "addresses", "cold-1", "--count", "2"]);
    assert_eq!(table.matches("bc1q").count(), 2, "{table}");
}

#[test]
fn readme_session_on_sqlite() {
    let env = Env::sqlite();
    readme_session(&env);
    assert!(env.path("tesoro.db").exists());
    let cfg = std::fs::read_to_string(env.path("tesoro.toml")).unwrap();
    assert!(
        cfg.contains("sqlite://tesoro.db") && cfg.contains("mainnet"),
        "{cfg}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(env.path("tesoro.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "config must not be readable by others");
    }
}

#[tokio::test]
async fn readme_session_on_postgres() {
    let (env, admin, name) = pg_env().await;
    // Run the blocking CLI calls off the async runtime.
    let env = tokio::task::spawn_blocking(move || {
        readme_session(&env);
        env
    })
    .await
    .unwrap();
    let cfg = std::fs::read_to_string(env.path("tesoro.toml")).unwrap();
    assert!(cfg.contains("postgres://"), "{cfg}");
    drop_pg(&admin, &name).await;
}

#[test]
fn other_network_refused_naming_both() {
    let env = Env::sqlite();
    env.ok(&["init", "--network", "regtest"]);
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "p",
        "--addresses",
        ES_COLD,
    ]);
    assert!(err.contains("mainnet") && err.contains("regtest"), "{err}");
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "c",
        "--descriptor",
        &format!("wpkh({XPUB84}/0/*)"),
    ]);
    assert!(
        err.contains("mainnet") && err.contains("regtest") && err.contains("tpub"),
        "{err}"
    );
    let err = env.fails(&["init", "--network", "mainnet"]);
    assert!(err.contains("regtest") && err.contains("mainnet"), "{err}");
    let list = env.ok(&["wallet", "list", "--json"]);
    assert_eq!(list.trim(), "[]");
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    let env = Env::sqlite();
    env.ok(&["init", "--network", "mainnet"]);
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    std::fs::write(
        env.path("list.txt"),
        format!("{ES_COLD}\n{FIRST84}\nbc1qnotanaddress\n"),
    )
    .unwrap();
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "p",
        "--addresses-file",
        "list.txt",
    ]);
    assert!(err.contains("list.txt line 3"), "{err}");
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "XX",
        "--name",
        "p",
        "--addresses",
        ES_COLD,
    ]);
    assert!(err.contains("no entity with code XX"), "{err}");
    let err = env.fails(&[
        "entity", "add", "Agency", "--code", "SV-A", "--parent", "NOPE",
    ]);
    assert!(err.contains("NOPE"), "{err}");
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "p",
        "--descriptor",
        "wpkh(garbage)",
    ]);
    assert!(
        err.contains("--descriptor") && err.starts_with("error:"),
        "{err}"
    );
    assert_eq!(env.ok(&["wallet", "list", "--json"]).trim(), "[]");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&env.ok(&["entity", "list", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Outside an initialised folder every command says what to do.
    let bare = Env::sqlite();
    let err = bare.fails(&["entity", "list"]);
    assert!(err.contains("tesoro init"), "{err}");
}

fn secrets() -> Vec<(&'static str, String)> {
    use bitcoin::bip32::Xpriv;
    use bitcoin::Network;
    let xprv = Xpriv::new_master(Network::Bitcoin, &[42; 32])
        .unwrap()
        .to_string();
    let tprv = Xpriv::new_master(Network::Regtest, &[43; 32])
        .unwrap()
        .to_string();
    let wif = bitcoin::PrivateKey::new(
        bitcoin::secp256k1::SecretKey::from_slice(&[44; 32]).unwrap(),
        Network::Bitcoin,
    )
    .to_wif();
    let seed =
        "legal winner thank year wave sausage worth useful legal winner thank yellow".to_string();
    vec![("xprv", xprv), ("tprv", tprv), ("wif", wif), ("seed", seed)]
}

/// Every way a private key can be handed to tesoro is refused, and afterwards the secret is
/// in none of the files tesoro wrote nor in anything it printed or logged at trace level.
#[test]
fn private_keys_refused_and_found_nowhere() {
    let env = Env::sqlite();
    env.ok(&["init", "--network", "mainnet"]);
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    let mut printed = Vec::new();
    for (kind, secret) in secrets() {
        // `tesoro wallet add --entity SV --name w` followed by `rest`.
        let add = |rest: Vec<String>| -> Vec<String> {
            ["wallet", "add", "--entity", "SV", "--name", "w"]
                .into_iter()
                .map(String::from)
                .chain(rest)
                .collect()
        };
        let attempts: Vec<Vec<String>> = vec![
            add(vec![
                "--descriptor".into(),
                format!("wpkh([d34db33f/84h/0h/0h]{secret}/0/*)"),
            ]),
            add(vec![
                "--descriptor".into(),
                format!("wpkh({XPUB84}/0/*)"),
                "--change-descriptor".into(),
                format!("wpkh({secret})"),
            ]),
            add(vec!["--addresses".into(), format!("{ES_COLD},{secret}")]),
            // As a stray argument: clap would echo it in its "unexpected argument" error.
            vec!["entity", "list", secret.as_str()]
                .into_iter()
                .map(String::from)
                .collect(),
            // A seed phrase typed without quotes arrives as separate arguments.
            ["entity", "add"]
                .into_iter()
                .map(String::from)
                .chain(secret.split(' ').map(String::from))
                .chain(["--code".into(), "XX".into()])
                .collect(),
            vec!["entity", "add", secret.as_str(), "--code", "YY"]
                .into_iter()
                .map(String::from)
                .collect(),
        ];
        for args in attempts {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.run_env(&refs, &[("RUST_LOG", "trace")]);
            let mut verbose = vec!["-vvv"];
            verbose.extend(&refs);
            let out2 = env.run(&verbose);
            for o in [&out, &out2] {
                assert!(!o.status.success(), "{kind}: tesoro {args:?} was accepted");
                let stderr = String::from_utf8_lossy(&o.stderr).to_string();
                assert!(stderr.contains("watch-only"), "{kind}: {stderr}");
                printed.push(stderr);
                printed.push(String::from_utf8_lossy(&o.stdout).to_string());
            }
        }
        // In a file of addresses.
        std::fs::write(env.path("keys.txt"), format!("{ES_COLD}\n{secret}\n")).unwrap();
        let out = env.run(&[
            "-vvv",
            "wallet",
            "add",
            "--entity",
            "SV",
            "--name",
            "w",
            "--addresses-file",
            "keys.txt",
        ]);
        assert!(!out.status.success(), "{kind} in a file was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            stderr.contains("keys.txt") && stderr.contains("watch-only"),
            "{stderr}"
        );
        printed.push(stderr);
        std::fs::remove_file(env.path("keys.txt")).unwrap();
    }
    // Nothing was stored.
    assert_eq!(env.ok(&["wallet", "list", "--json"]).trim(), "[]");
    let entities: serde_json::Value =
        serde_json::from_str(&env.ok(&["entity", "list", "--json"])).unwrap();
    assert_eq!(entities.as_array().unwrap().len(), 1);
    // And no secret, nor a long piece of one, is anywhere tesoro wrote or said.
    let written = files_bytes(env.dir.path());
    for (kind, secret) in secrets() {
        let needles: Vec<String> = if kind == "seed" {
            vec![
                secret.clone(),
                secret.split(' ').take(4).collect::<Vec<_>>().join(" "),
            ]
        } else {
            vec![secret.clone(), secret[4..28].to_string()]
        };
        for needle in needles {
            assert!(
                !written
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes()),
                "{kind} found in a file tesoro wrote"
            );
            for p in &printed {
                assert!(!p.contains(&needle), "{kind} echoed in output: {p}");
            }
        }
    }
}

fn files_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(&p).unwrap());
            all.push(0);
        }
    }
    all
}

/// A script watched by two wallets would be counted twice: the second wallet is refused,
/// whichever kind comes first.
#[test]
fn a_script_belongs_to_one_wallet() {
    let env = Env::sqlite();
    env.ok(&["init", "--network", "mainnet"]);
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    let desc = format!("wpkh([73c5da0a/84h/0h/0h]{XPUB84}/<0;1>/*)");
    env.ok(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "cold",
        "--descriptor",
        &desc,
    ]);
    // BIP-84's first receive address is child 0 of that descriptor.
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "pub",
        "--addresses",
        FIRST84,
    ]);
    assert!(
        err.contains("SV/cold") && err.contains("external index 0"),
        "{err}"
    );
    // The other way round: a descriptor deriving an address already published.
    let env = Env::sqlite();
    env.ok(&["init", "--network", "mainnet"]);
    env.ok(&["entity", "add", "El Salvador", "--code", "SV"]);
    env.ok(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "pub",
        "--addresses",
        FIRST84,
    ]);
    let err = env.fails(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        "cold",
        "--descriptor",
        &desc,
    ]);
    assert!(err.contains("SV/pub") && err.contains(FIRST84), "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&env.ok(&["wallet", "list", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
