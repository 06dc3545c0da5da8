//! How commands print: tables, times, and secrets shown once.

use crate::auth::Secret;

/// Prints rows as left-aligned columns sized to their widest cell.
pub(super) fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()));
    }
}

/// Prints a secret generated for someone alone on stdout (so that `$(…)` captures exactly
/// it), with `note` on stderr for whoever reads the terminal; `what` names the secret.
pub(super) fn print_secret_once(note: &str, what: &str, secret: &Secret) {
    eprintln!("{note}; {what} is printed below, once: it cannot be shown again");
    println!("{}", secret.expose());
}

pub(super) fn time_text(at: Option<chrono::DateTime<chrono::Utc>>, none: &str) -> String {
    at.map_or_else(
        || none.to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
