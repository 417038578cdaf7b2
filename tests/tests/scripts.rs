//! The repository's shell scripts and the Vagrantfile, checked the way the
//! machines that run them would read them: every script parses (`bash -n`
//! or `sh -n`, by its shebang) and passes shellcheck; the Vagrantfile
//! parses (`ruby -c`) and so do the provisioning scripts inside it. The VM
//! suite itself cannot run here, so this is what keeps it from rotting.
//!
//! shellcheck and ruby are optional on a developer's machine (the check
//! says it skipped them); under CI (`CI` set) their absence is a failure,
//! since `.ci/run` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Files starting with a `sh` or `bash` shebang, outside `target/` and
/// `.git/`, with the shell to parse them with.
fn shell_scripts() -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    let mut dirs = vec![repo()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && name != ".git" {
                    dirs.push(path);
                }
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let first = text.lines().next().unwrap_or("");
            let shell = if !first.starts_with("#!") {
                continue;
            } else if first.contains("bash") {
                "bash"
            } else if first.ends_with("/sh") || first.ends_with(" sh") {
                "sh"
            } else {
                continue;
            };
            out.push((path, shell));
        }
    }
    out.sort();
    out
}

/// Whether `tool` runs; if not, says so (or fails under CI).
fn have(tool: &str, check: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{check}: {tool} is not installed, and CI must run this check (.ci/run installs it)"
        );
        eprintln!(
            "{check}: skipped the {tool} part: {tool} is not installed (apt-get install {tool})"
        );
    }
    found
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_shell_script_parses_and_passes_shellcheck() {
    let scripts = shell_scripts();
    let names: Vec<String> = scripts
        .iter()
        .map(|(p, _)| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    for expected in [
        "scripts/test",
        ".ci/run",
        "vm-tests/run",
        "vm-tests/systemd/run",
        "vm-tests/systemd/recipe",
        "vm-tests/systemd/guest/boot",
        "vm-tests/systemd/guest/lib.sh",
        "vm-tests/systemd/scenarios/reboot",
        "vm-tests/systemd/scenarios/unit-journal",
        "packaging/freebsd/rc.d/banset",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} was not found among the scripts: {names:?}"
        );
    }
    for (path, shell) in &scripts {
        run_ok(
            Command::new(shell).arg("-n").arg(path),
            &format!("{shell} -n {}", path.display()),
        );
    }
    if have(
        "shellcheck",
        "every_shell_script_parses_and_passes_shellcheck",
    ) {
        for (path, _) in &scripts {
            run_ok(
                Command::new("shellcheck").arg(path),
                &format!("shellcheck {}", path.display()),
            );
        }
    }
}

/// Loads the Vagrantfile with a stand-in for Vagrant that writes out each
/// inline provisioning script, so their shell is checked too.
const EXTRACT_PROVISIONING: &str = r#"
module Vagrant
  class Recorder
    def initialize(out)
      @out = out
    end

    def method_missing(name, *args, **kw, &blk)
      @out << kw[:inline] if name == :provision && kw[:inline]
      blk.call(Recorder.new(@out)) if blk
      Recorder.new(@out)
    end

    def respond_to_missing?(*)
      true
    end
  end

  def self.configure(_version)
    out = []
    yield Recorder.new(out)
    out.each_with_index do |text, i|
      File.write(File.join(ENV.fetch("OUT"), "provision#{i}.sh"), text)
    end
  end
end
load ARGV.fetch(0)
"#;

#[test]
fn the_vagrantfile_and_its_provisioning_parse() {
    let vagrantfile = repo().join("Vagrantfile");
    if !have("ruby", "the_vagrantfile_and_its_provisioning_parse") {
        return;
    }
    run_ok(
        Command::new("ruby").arg("-c").arg(&vagrantfile),
        "ruby -c Vagrantfile",
    );
    let out = std::env::temp_dir().join(format!("banset-vagrant-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    run_ok(
        Command::new("ruby")
            .arg("-e")
            .arg(EXTRACT_PROVISIONING)
            .arg(&vagrantfile)
            .env("OUT", &out),
        "loading the Vagrantfile with a stand-in Vagrant",
    );
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    scripts.sort();
    assert_eq!(
        scripts.len(),
        2,
        "one provisioning script per machine (centos, freebsd)"
    );
    let shellcheck = have("shellcheck", "the_vagrantfile_and_its_provisioning_parse");
    for script in &scripts {
        run_ok(
            Command::new("sh").arg("-n").arg(script),
            &format!("sh -n {}", script.display()),
        );
        if shellcheck {
            run_ok(
                Command::new("shellcheck").args(["-s", "sh"]).arg(script),
                &format!("shellcheck of the Vagrantfile's {}", script.display()),
            );
        }
    }
    std::fs::remove_dir_all(&out).unwrap();
}
