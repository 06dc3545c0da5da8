//! Disk space and load of a Linux (or other POSIX) host, polled over SSH with `df -P` and
//! `cat /proc/loadavg`. Every alert clears itself on the first poll that finds things fine.
//!
//! - `diskFull` (major) per mount point whose `Capacity` is above `disk_used_percent_max`:
//!   identity `mount`, fields `filesystem`, `used_percent`, `available_kb`; cleared at or below
//!   it. Filesystems in `ignore_filesystems` are skipped altogether, neither raised nor cleared;
//! - `highLoad` (warning) when the 1-minute load average is above `load_max`: fields `load1`,
//!   `load5`, `load15`, `limit`; cleared at or below it;
//! - `commandFailed` (warning) per command that exits non-zero: identity `command`, fields
//!   `exit_status`, `stderr`; cleared when it exits 0. `df` exits 1 when one mount cannot be read
//!   (a stale NFS handle) yet lists the others, so its output is still read.
//!
//! A fetch the host could not run (no answer, authentication failed) reports nothing: the host
//! raises "target unreachable" itself. Output that is not what the command prints (a login
//! banner, another program) is `invalid-input` naming the fetch.
//!
//! `df -P` prints one line per filesystem: `Filesystem 1024-blocks Used Available Capacity
//! Mounted on`. The numbers are found from the right of the line, so a filesystem name with
//! spaces still parses; mount points start with `/` and may contain spaces too. Plain `df -P`
//! has no type column, so `ignore_filesystems` is matched against the Filesystem column
//! (`tmpfs`, `overlay` are also the device names of those mounts); output of `df -PT`, with a
//! `Type` column, is recognised by its header and then matched by type.
//!
//! Target config: `disk_used_percent_max` (0-100, default 90), `load_max` (default 8.0),
//! `ignore_filesystems` (default tmpfs, devtmpfs, overlay, squashfs).

use opsconductor_addon_sdk::prelude::*;

#[derive(Default)]
struct LinuxSsh;

register_addon!(LinuxSsh);

const IGNORED: [&str; 4] = ["tmpfs", "devtmpfs", "overlay", "squashfs"];

/// One line of `df -P`.
#[derive(Debug, PartialEq)]
struct Filesystem<'a> {
    name: &'a str,
    fs_type: Option<&'a str>,
    available_kb: u64,
    used_percent: u32,
    mount: &'a str,
}

impl Addon for LinuxSsh {
    fn parse_poll(&self, poll: &PollResult) -> Result<Vec<Alert>> {
        let config = poll.config()?;
        let percent = |v: &f64| (0.0..=100.0).contains(v);
        let max_used = config.get_checked(
            "disk_used_percent_max",
            90.0,
            percent,
            "must be from 0 to 100",
        )?;
        let load_max =
            config.get_checked("load_max", 8.0, |v| *v >= 0.0, "must be a number from 0")?;
        let ignored: Vec<String> =
            config.get_or("ignore_filesystems", IGNORED.map(str::to_owned).to_vec())?;

        let new = |alert_type: &str, title: String, raise: bool, severity: Severity| {
            Alert::new(alert_type, title)
                .target(&poll.target)
                .clears(!raise)
                .severity(raise.then_some(severity))
                .occurred_at_millis(poll.started_at)
        };
        let name = poll.target.label();
        let mut alerts = Vec::new();
        for fetch in ["df", "loadavg"] {
            let Some(out) = poll.ssh(fetch)? else {
                continue;
            };
            let failed = out.exit_status != 0;
            let stderr = out.stderr_text();
            let title = format!("{name}: `{}` exited with {}", out.command, out.exit_status);
            alerts.push(
                new("commandFailed", title, failed, Severity::Warning)
                    .identity("command", &out.command)
                    .field("exit_status", out.exit_status.to_string())
                    .field_opt("stderr", failed.then(|| excerpt(&stderr))),
            );
            let stdout = out.stdout_text();
            if fetch == "df" {
                for fs in df(&stdout)? {
                    if ignored.iter().any(|i| fs.fs_type.unwrap_or(fs.name) == i) {
                        continue;
                    }
                    let full = f64::from(fs.used_percent) > max_used;
                    let title = format!("{name}: {} is {}% full", fs.mount, fs.used_percent);
                    alerts.push(
                        new("diskFull", title, full, Severity::Major)
                            .message(format!(
                                "{} on {}: {}% used, {} KiB available; the limit is {max_used}%",
                                fs.name, fs.mount, fs.used_percent, fs.available_kb
                            ))
                            .identity("mount", fs.mount)
                            .field("filesystem", fs.name)
                            .field("used_percent", fs.used_percent.to_string())
                            .field("available_kb", fs.available_kb.to_string()),
                    );
                }
            } else if !failed {
                let [load1, load5, load15] = loadavg(&stdout)?;
                let high = load1 > load_max;
                let title = format!("{name}: load average {load1}");
                alerts.push(
                    new("highLoad", title, high, Severity::Warning)
                        .message(format!(
                            "load average {load1} {load5} {load15} (1, 5, 15 minutes); \
                             the limit is {load_max}"
                        ))
                        .field("load1", load1.to_string())
                        .field("load5", load5.to_string())
                        .field("load15", load15.to_string())
                        .field("limit", load_max.to_string()),
                );
            }
        }
        Ok(alerts)
    }
}

/// The filesystems `df -P` (or `df -PT`) listed. Lines that do not parse are skipped with a
/// warning (`df` prints its complaints to stderr, so there should be none); output without
/// the header is not `df`'s.
fn df(stdout: &str) -> Result<Vec<Filesystem<'_>>> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let mut words = header.split_whitespace();
    if words.next() != Some("Filesystem") {
        return Err(AddonError::invalid_input(format!(
            "df: output does not start with the `Filesystem` header: `{}`",
            excerpt(header)
        )));
    }
    let typed = words.next() == Some("Type");
    let re = if typed {
        regex!(
            r"^(?P<fs>.+?)\s+(?P<type>\S+)\s+\d+\s+\d+\s+(?P<avail>\d+)\s+(?P<cap>\d+)%\s+(?P<mount>/.*)$"
        )
    } else {
        regex!(r"^(?P<fs>.+?)\s+\d+\s+\d+\s+(?P<avail>\d+)\s+(?P<cap>\d+)%\s+(?P<mount>/.*)$")
    };
    let mut filesystems = Vec::new();
    for line in lines {
        let parsed = re.captures(line.trim()).and_then(|c| {
            Some(Filesystem {
                name: c.name("fs")?.as_str(),
                fs_type: c.name("type").map(|t| t.as_str()),
                available_kb: c["avail"].parse().ok()?,
                used_percent: c["cap"].parse().ok()?,
                mount: c.name("mount")?.as_str().trim_end(),
            })
        });
        match parsed {
            Some(fs) => filesystems.push(fs),
            // `-` for the capacity of a filesystem without blocks, or something odd.
            None => host::debug(&format!("df: skipped `{}`", excerpt(line))),
        }
    }
    Ok(filesystems)
}

/// The 1, 5 and 15-minute load averages from `/proc/loadavg` (`0.52 0.58 0.59 1/1234 5678`).
fn loadavg(stdout: &str) -> Result<[f64; 3]> {
    let mut numbers = stdout.split_whitespace().map(|w| w.parse::<f64>().ok());
    let mut next = || numbers.next().flatten().filter(|n| n.is_finite());
    match (next(), next(), next()) {
        (Some(a), Some(b), Some(c)) => Ok([a, b, c]),
        _ => Err(AddonError::invalid_input(format!(
            "loadavg: `{}` is not /proc/loadavg output",
            excerpt(stdout)
        ))),
    }
}

/// At most 500 characters of `text`, trimmed: enough to see what went wrong.
fn excerpt(text: &str) -> String {
    truncate(text.trim(), 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsconductor_addon_sdk::{ErrorKind, testing};

    fn parse(json: &str) -> Result<Vec<Alert>> {
        LinuxSsh.parse_poll(&testing::poll_json(json))
    }

    /// (alert type, identity value, clears) of each alert.
    fn summary(alerts: &[Alert]) -> Vec<(&str, &str, bool)> {
        alerts
            .iter()
            .map(|a| {
                let id = a.identity.first().map_or("", |(_, v)| v.as_str());
                (a.alert_type.as_str(), id, a.clears)
            })
            .collect()
    }

    #[test]
    fn fixture_full_disk_and_high_load() {
        let alerts = parse(include_str!("../fixtures/full.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("commandFailed", "df -P", true),
                ("diskFull", "/", true),
                ("diskFull", "/var/lib/postgresql", false),
                ("diskFull", "/boot/efi", true),
                ("diskFull", "/mnt/backup share", false),
                ("commandFailed", "cat /proc/loadavg", true),
                ("highLoad", "", false),
            ]
        );
        let disk = &alerts[2];
        assert_eq!(disk.title, "db-1: /var/lib/postgresql is 97% full");
        assert_eq!(
            disk.message,
            "/dev/mapper/vg0-pgdata on /var/lib/postgresql: 97% used, 3145728 KiB available; \
             the limit is 90%"
        );
        assert_eq!(disk.severity, Some(Severity::Major));
        assert_eq!(
            disk.fields,
            [
                ("filesystem".into(), "/dev/mapper/vg0-pgdata".into()),
                ("used_percent".into(), "97".into()),
                ("available_kb".into(), "3145728".into()),
            ]
        );
        assert_eq!(alerts[4].fields[0].1, "//nas-1/backup share");
        assert_eq!(alerts[6].title, "db-1: load average 12.5");
        assert_eq!(alerts[6].severity, Some(Severity::Warning));
    }

    #[test]
    fn fixture_healthy_clears_everything() {
        let alerts = parse(include_str!("../fixtures/healthy.input.poll.json")).unwrap();
        assert!(alerts.iter().all(|a| a.clears && a.severity.is_none()));
        assert_eq!(alerts.len(), 5);
    }

    #[test]
    fn fixture_df_failed_still_reads_the_rest() {
        let alerts = parse(include_str!("../fixtures/df-stale-nfs.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("commandFailed", "df -P", false),
                ("diskFull", "/", true),
                ("commandFailed", "cat /proc/loadavg", false),
            ]
        );
        assert_eq!(
            alerts[0].fields[1],
            ("stderr".into(), "df: /mnt/nfs: Stale file handle".into())
        );
    }

    #[test]
    fn fixture_config_lowers_limits_and_ignores_by_name() {
        let alerts = parse(include_str!("../fixtures/limits.input.poll.json")).unwrap();
        assert_eq!(
            summary(&alerts),
            [
                ("commandFailed", "df -P", true),
                ("diskFull", "/", false),
                ("commandFailed", "cat /proc/loadavg", true),
                ("highLoad", "", false),
            ]
        );
        assert_eq!(alerts[3].fields[3], ("limit".into(), "2".into()));
    }

    #[test]
    fn typed_df_is_matched_by_type() {
        let out = "Filesystem     Type     1024-blocks    Used Available Capacity Mounted on\n\
                   /dev/sda1      ext4        61255652 49238408   8875912      85% /\n\
                   /dev/loop0     squashfs       65536    65536         0     100% /snap/core18/2128\n";
        let fs = df(out).unwrap();
        assert_eq!(
            fs.iter()
                .map(|f| (f.name, f.fs_type, f.mount))
                .collect::<Vec<_>>(),
            [
                ("/dev/sda1", Some("ext4"), "/"),
                ("/dev/loop0", Some("squashfs"), "/snap/core18/2128")
            ]
        );
    }

    #[test]
    fn fixture_unreachable_reports_nothing() {
        assert!(
            parse(include_str!("../fixtures/unreachable.input.poll.json"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn fixture_banner_is_invalid_input() {
        let err = parse(include_str!("../fixtures/not-df.input.poll.json")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(
            err.message.starts_with("df: output does not start"),
            "{}",
            err.message
        );
    }

    #[test]
    fn fixture_bad_config_names_the_key() {
        let err = parse(include_str!("../fixtures/bad-config.input.poll.json")).unwrap_err();
        assert_eq!(
            err.message,
            "target config `disk_used_percent_max`: must be from 0 to 100"
        );
    }

    #[test]
    fn df_lines_from_the_right() {
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                   map auto_home 0 0 0 100% /System/Volumes/Data/home\n\
                   proc 0 0 0 - /proc\n\
                   /dev/sda1   100  50  50   50% /\n";
        let fs = df(out).unwrap();
        assert_eq!(fs.len(), 2);
        assert_eq!(
            (fs[0].name, fs[0].mount),
            ("map auto_home", "/System/Volumes/Data/home")
        );
        assert_eq!(
            (fs[1].name, fs[1].used_percent, fs[1].available_kb),
            ("/dev/sda1", 50, 50)
        );
        assert!(df("").is_err());
        assert_eq!(
            df("Filesystem 1024-blocks Used Available Capacity Mounted on\n").unwrap(),
            []
        );
    }

    #[test]
    fn loadavg_and_bad_config() {
        assert_eq!(
            loadavg("0.52 0.58 0.59 1/1234 5678\n").unwrap(),
            [0.52, 0.58, 0.59]
        );
        assert!(loadavg("0.5 NaN 1").is_err());
        assert!(loadavg("").is_err());
        let poll = |config: &str| {
            let json = format!(
                r#"{{"target": {{"id": "1", "name": "h", "address": "192.0.2.1", "config": {config}}},
                    "started_at": 0, "fetched": []}}"#
            );
            LinuxSsh
                .parse_poll(&testing::poll_json(&json))
                .unwrap_err()
                .message
        };
        assert_eq!(
            poll(r#"{"load_max": -1}"#),
            "target config `load_max`: must be a number from 0"
        );
        assert!(
            poll(r#"{"ignore_filesystems": "tmpfs"}"#)
                .starts_with("target config `ignore_filesystems`: invalid type")
        );
        assert!(
            poll(r#"{"load_max": "high"}"#).starts_with("target config `load_max`: invalid type")
        );
    }

    #[test]
    fn long_stderr_is_cut() {
        let long = "x".repeat(600);
        assert_eq!(excerpt(&long).chars().count(), 501);
        assert_eq!(excerpt(" short \n"), "short");
    }

    #[test]
    fn every_fixture_passes_natively() {
        // The host's fixture runner, natively: parse, manifest rules, expectation.
        testing::check_fixtures(&LinuxSsh, env!("CARGO_MANIFEST_DIR"));
    }
}
