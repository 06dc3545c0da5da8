//! `opsconductor addon new`: a new addon's source directory from the templates in
//! `runtime/templates/` — a Cargo project against the SDK, a manifest for the current WIT
//! world, one fixture pair that passes, a README; or, for `--kind rules`, a rules addon: the
//! manifest with its rules, the fixture pair and a README, nothing to build.

use std::path::Path;

use anyhow::{Context, bail};

use crate::manifest::{Manifest, WORLD_RULES, WORLD_V0_2};

/// The SDK of the source tree this binary was built from: what `addon new` depends on unless
/// told `--sdk-path`.
pub const DEFAULT_SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../addon-sdk");

/// What a new addon reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A JSON webhook (`POST /webhooks/<id>`).
    Webhook,
    /// SNMP traps under an enterprise OID prefix.
    Trap,
    /// A declarative poll of each configured target (an HTTP fetch).
    Poll,
    /// A JSON webhook handled by rules in the manifest (docs/rules.md) instead of code.
    Rules,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Trap => "trap",
            Kind::Poll => "poll",
            Kind::Rules => "rules",
        }
    }
}

/// One file of a template: its path in the new addon and its text, placeholders unreplaced.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

macro_rules! template {
    ($path:literal, $file:literal) => {
        TemplateFile {
            path: $path,
            text: include_str!(concat!("../../templates/", $file)),
        }
    };
}

const COMMON: [TemplateFile; 3] = [
    template!("Cargo.toml", "addon-common/Cargo.toml.tmpl"),
    template!("README.md", "addon-common/README.md.tmpl"),
    template!(".gitignore", "addon-common/gitignore.tmpl"),
];

const WEBHOOK: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-webhook/lib.rs.tmpl"),
    template!("manifest.json", "addon-webhook/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.json",
        "addon-webhook/fixtures/example.input.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-webhook/fixtures/example.expected.json"
    ),
];

const TRAP: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-trap/lib.rs.tmpl"),
    template!("manifest.json", "addon-trap/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.trap.json",
        "addon-trap/fixtures/example.input.trap.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-trap/fixtures/example.expected.json"
    ),
];

const POLL: [TemplateFile; 4] = [
    template!("src/lib.rs", "addon-poll/lib.rs.tmpl"),
    template!("manifest.json", "addon-poll/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.poll.json",
        "addon-poll/fixtures/example.input.poll.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-poll/fixtures/example.expected.json"
    ),
];

const RULES: [TemplateFile; 4] = [
    template!("README.md", "addon-rules/README.md.tmpl"),
    template!("manifest.json", "addon-rules/manifest.json.tmpl"),
    template!(
        "fixtures/example.input.json",
        "addon-rules/fixtures/example.input.json"
    ),
    template!(
        "fixtures/example.expected.json",
        "addon-rules/fixtures/example.expected.json"
    ),
];

/// The Rust type name of an addon id: `acme-checks` → `AcmeChecks` (`A` first when the id
/// starts with a digit).
fn type_name(id: &str) -> String {
    let mut name: String = id
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert(0, 'A');
    }
    name
}

/// Creates a new addon of `kind` in `dir` (which must not exist, or be empty), depending on
/// the SDK at `sdk_path` (unused for rules). Returns the files written, relative to `dir`.
pub fn scaffold(
    id: &str,
    kind: Kind,
    dir: &Path,
    sdk_path: &Path,
) -> anyhow::Result<Vec<&'static str>> {
    let compiled = kind != Kind::Rules;
    let sdk_path = match std::fs::canonicalize(sdk_path)
        .ok()
        .filter(|p| p.join("Cargo.toml").is_file())
    {
        Some(path) => path,
        None if !compiled => sdk_path.to_owned(),
        None => bail!(
            "no addon SDK at {} (pass --sdk-path with the path of opsconductor's addon-sdk)",
            sdk_path.display()
        ),
    };
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none();
        if !empty {
            bail!(
                "{} already exists and is not empty; choose another --dir",
                dir.display()
            );
        }
    }

    let (per_kind, summary, manifest_part, input_suffix, input_what) = match kind {
        Kind::Webhook => (
            &WEBHOOK,
            "It takes JSON posted to `/webhooks/{{id}}` and raises or clears one alert per host \
             and check.",
            "`webhook` (path, body limit)",
            "input.json",
            "a request body, posted to the webhook path",
        ),
        Kind::Trap => (
            &TRAP,
            "It turns SNMP traps under the example enterprise `1.3.6.1.4.1.99999.0` into alerts \
             (replace the OIDs in `src/lib.rs` and `manifest.json` with your vendor's).",
            "`snmp_trap` (the trap OID prefixes it claims)",
            "input.trap.json",
            "an SNMP trap as JSON (format in the SDK README, \"Testing\")",
        ),
        Kind::Poll => (
            &POLL,
            "It polls each configured target over HTTP (`GET /{path}`, `path` from the \
             target's config) and alerts while the answer is not 2xx. Record a real target's \
             answer as a fixture with `opsconductor addon record`.",
            "`poll` (what the host fetches from each target)",
            "input.poll.json",
            "a poll result as JSON: what the host's fetches returned (format in the SDK README)",
        ),
        Kind::Rules => (
            &RULES,
            "It takes JSON posted to `/webhooks/{{id}}` and raises or clears one alert per host \
             and check.",
            "",
            "input.json",
            "",
        ),
    };
    let sdk_toml = toml::Value::String(sdk_path.display().to_string()).to_string();
    let replace = |text: &str| {
        text.replace("{{summary}}", summary)
            .replace("{{manifest_part}}", manifest_part)
            .replace("{{input_suffix}}", input_suffix)
            .replace("{{input_what}}", input_what)
            .replace("{{kind}}", kind.name())
            .replace("{{id}}", id)
            .replace("{{type}}", &type_name(id))
            .replace("{{crate}}", &format!("opsconductor-addon-{id}"))
            .replace("{{sdk_path}}", &sdk_toml)
            .replace("{{world}}", if compiled { WORLD_V0_2 } else { WORLD_RULES })
    };

    // The manifest is checked before anything is written: a bad id is refused with the
    // manifest's own message.
    let common: &[TemplateFile] = if compiled { &COMMON } else { &[] };
    let files: Vec<(&'static str, String)> = common
        .iter()
        .chain(per_kind.iter())
        .map(|f| (f.path, replace(f.text)))
        .collect();
    let manifest = files
        .iter()
        .find(|(path, _)| *path == "manifest.json")
        .map(|(_, text)| text.as_bytes())
        .unwrap_or_default();
    Manifest::from_json(manifest).map_err(|e| anyhow::anyhow!("addon id `{id}`: {e}"))?;

    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if !compiled {
        return Ok(files.iter().map(|(path, _)| *path).collect());
    }
    // The SDK's dependencies at the versions the bundled addons are built and tested with;
    // cargo drops what this addon does not use.
    let lock = include_str!("../../../addons/Cargo.lock");
    std::fs::write(dir.join("Cargo.lock"), lock)
        .with_context(|| format!("writing {}", dir.join("Cargo.lock").display()))?;
    Ok(files.iter().map(|(path, _)| *path).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_of_ids() {
        for (id, want) in [
            ("acme-checks", "AcmeChecks"),
            ("x", "X"),
            ("snmp_fans-2", "SnmpFans2"),
            ("3par", "A3par"),
        ] {
            assert_eq!(type_name(id), want, "{id}");
        }
    }

    #[test]
    fn scaffold_refuses_bad_ids_and_non_empty_dirs() {
        let tmp = std::env::temp_dir().join(format!("oc-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let sdk = Path::new(DEFAULT_SDK_PATH);
        let err = scaffold("Bad Id", Kind::Webhook, &tmp.join("a"), sdk).unwrap_err();
        assert!(err.to_string().contains("must be 1-64 characters"), "{err}");
        assert!(!tmp.join("a").exists(), "nothing written for a bad id");

        let files = scaffold("ok-1", Kind::Poll, &tmp.join("b"), sdk).unwrap();
        assert!(
            files.contains(&"fixtures/example.input.poll.json"),
            "{files:?}"
        );
        let manifest = std::fs::read(tmp.join("b/manifest.json")).unwrap();
        assert_eq!(Manifest::from_json(&manifest).unwrap().world, WORLD_V0_2);
        let cargo = std::fs::read_to_string(tmp.join("b/Cargo.toml")).unwrap();
        assert!(
            cargo.contains("name = \"opsconductor-addon-ok-1\""),
            "{cargo}"
        );
        assert!(!cargo.contains("{{"), "{cargo}");
        let err = scaffold("ok-1", Kind::Poll, &tmp.join("b"), sdk).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
