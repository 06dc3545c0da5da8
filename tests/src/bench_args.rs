//! The benchmarks' command lines: `--name value` pairs, read the same way by every benchmark
//! binary. A mistake stops the program with a message naming the flag.

use crate::Db;

/// The `--name value` pairs of this program's command line, in order.
pub fn pairs() -> Vec<(String, String)> {
    let mut args = std::env::args().skip(1);
    let mut pairs = Vec::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        pairs.push((flag, value));
    }
    pairs
}

/// `--db`'s value: `sqlite` or `postgres`.
pub fn db(value: &str) -> Db {
    match value {
        "sqlite" => Db::Sqlite,
        "postgres" => Db::Postgres,
        other => panic!("--db {other}: expected sqlite or postgres"),
    }
}
