//! A database of its own for each PostgreSQL test, created on the server named by
//! `CASHMATCH_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped after;
//! `cashmatch bench serve --store` measures on one the same way ([`TestDb::create_on`]).
//!
//! Without a server, a test cannot prove anything about PostgreSQL: it says so loudly and runs
//! on SQLite only, except under `CI=true` or `CASHMATCH_REQUIRE_PG` (set by `.ci/run`), where a
//! missing server fails the test (CI must run the service tests on both stores).

use postgres::{Client, NoTls};

const DEFAULT_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that lives as long as this value.
pub struct TestDb {
    /// The URL a store opens.
    pub url: String,
    admin: String,
    name: String,
}

/// The `postgres` client drives a runtime of its own, which cannot start inside a tokio worker:
/// the admin statements run on a thread of their own, so tests may create and drop databases
/// from async code too.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Whether a missing server fails the test: under CI (`CI=true`, or `.ci/run`, which sets
/// `CASHMATCH_REQUIRE_PG` whatever its runner calls itself).
fn required() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
        || std::env::var_os("CASHMATCH_REQUIRE_PG").is_some()
}

fn admin_url() -> String {
    std::env::var("CASHMATCH_TEST_PG").unwrap_or_else(|_| DEFAULT_ADMIN.to_string())
}

impl TestDb {
    /// A fresh database for the test `label`, or `None` when no server answers and this is not
    /// CI (after a message saying what was skipped).
    pub fn create(label: &str) -> Option<TestDb> {
        let admin = admin_url();
        match TestDb::create_on(&admin, label) {
            Ok(db) => Some(db),
            Err(e) if required() => {
                panic!(
                    "PostgreSQL at {admin} is unreachable and this run needs it (CI=true or \
                        CASHMATCH_REQUIRE_PG): {e}"
                )
            }
            Err(e) => {
                eprintln!(
                    "\n!!! SKIPPED on PostgreSQL: {label}: no server at {admin} ({e}); ran on \
                     SQLite only. Start PostgreSQL or set CASHMATCH_TEST_PG. !!!\n"
                );
                None
            }
        }
    }

    /// A fresh database named after `label` on the server of `admin` (a URL ending in
    /// `/DATABASE`, which is only connected to, to create the new one).
    pub fn create_on(admin: &str, label: &str) -> Result<TestDb, String> {
        let base = match admin.rfind('/') {
            Some(i) if admin[..i].contains("://") => admin[..i].to_string(),
            _ => return Err(format!("{admin} does not end in /DATABASE")),
        };
        let mut nonce = [0u8; 6];
        getrandom::fill(&mut nonce).map_err(|e| format!("a random database name: {e}"))?;
        let suffix: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let name = format!("cashmatch_test_{clean}_{suffix}");
        let (a, n) = (admin.to_string(), name.clone());
        on_thread(move || -> Result<(), postgres::Error> {
            let mut c = Client::connect(&a, NoTls)?;
            c.batch_execute(&format!("CREATE DATABASE {n}"))
        })
        .map_err(|e| e.to_string())?;
        Ok(TestDb {
            url: format!("{base}/{name}"),
            admin: admin.to_string(),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = on_thread(move || -> Result<(), postgres::Error> {
            let mut c = Client::connect(&admin, NoTls)?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}
