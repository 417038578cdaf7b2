//! `banset generate man|completions DIR` (hidden): the generated files
//! alone, for packagers whose layout `banset install` does not know.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::args::{GenerateArgs, Generated};
use crate::assets;
use crate::errors::EXIT_OK;

pub fn run(args: GenerateArgs) -> Result<Option<i32>> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    match args.what {
        Generated::Man => {
            for page in assets::man_pages() {
                write(&args.dir, &page.name, &page.text)?;
            }
            write(
                &args.dir,
                "banset.toml.5",
                assets::CONFIG_MAN_PAGE.as_bytes(),
            )?;
        }
        Generated::Completions => {
            for (shell, name) in assets::SHELLS {
                write(&args.dir, name, &assets::completion(shell))?;
            }
        }
    }
    Ok(Some(EXIT_OK))
}

fn write(dir: &Path, name: &str, text: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}
