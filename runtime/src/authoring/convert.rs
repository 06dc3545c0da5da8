//! `opsconductor addon convert-legacy`: a legacy system's addon manifest as a rules addon's
//! folder ([`opsconductor_model::legacy`] does the converting): `manifest.json`, `fixtures/`
//! (copied when given) and a README that lists what could not be carried over.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use opsconductor_model::legacy;

/// What `convert_legacy` wrote and left out.
pub struct Converted {
    pub dir: PathBuf,
    pub id: String,
    pub left_out: Vec<String>,
    pub fixtures: usize,
}

/// Converts the legacy manifest at `path` into the folder `out` (default `./<id>`, which must
/// not exist or be empty), copying the files of `fixtures` into its `fixtures/`.
pub fn convert_legacy(
    path: &Path,
    out: Option<&Path>,
    fixtures: Option<&Path>,
) -> anyhow::Result<Converted> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let legacy: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let converted =
        legacy::convert(&legacy).with_context(|| format!("converting {}", path.display()))?;
    let id = converted.manifest.id.clone();
    let dir = out.map_or_else(|| PathBuf::from(&id), Path::to_owned);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty; choose another --out",
            dir.display()
        );
    }
    let fixture_dir = dir.join("fixtures");
    std::fs::create_dir_all(&fixture_dir)
        .with_context(|| format!("creating {}", fixture_dir.display()))?;
    let mut copied = 0;
    if let Some(from) = fixtures {
        for entry in
            std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?
        {
            let entry = entry?;
            if entry.path().is_file() {
                std::fs::copy(entry.path(), fixture_dir.join(entry.file_name()))
                    .with_context(|| format!("copying {}", entry.path().display()))?;
                copied += 1;
            }
        }
    }
    let manifest = serde_json::to_string_pretty(&converted.manifest)? + "\n";
    std::fs::write(dir.join("manifest.json"), manifest)
        .with_context(|| format!("writing {}", dir.join("manifest.json").display()))?;
    std::fs::write(
        dir.join("README.md"),
        readme(&id, path, &converted.left_out),
    )
    .with_context(|| format!("writing {}", dir.join("README.md").display()))?;
    Ok(Converted {
        dir,
        id,
        left_out: converted.left_out,
        fixtures: copied,
    })
}

fn readme(id: &str, from: &Path, left_out: &[String]) -> String {
    let mut text = format!(
        "# {id}\n\nA rules addon (docs/rules.md) converted by `opsconductor addon convert-legacy` \
         from the legacy manifest `{}`.\n\n",
        from.display()
    );
    if left_out.is_empty() {
        text.push_str("Everything in the legacy manifest was carried over.\n");
    } else {
        text.push_str("Not carried over (check whether the rules need to do it):\n\n");
        for line in left_out {
            text.push_str(&format!("- {line}\n"));
        }
    }
    text.push_str(
        "\nAdd fixtures (`fixtures/<name>.input.json` and `<name>.expected.json`, started as `[]` \
         and filled by `opsconductor addon test . --update`): a bundle installs only when its \
         fixtures pass.\n",
    );
    text
}
