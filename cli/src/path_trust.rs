//! Whether a file the daemon acts on could have been written by someone
//! else. `banset watch` runs as root and does what its inputs say: the
//! config chooses the `on_ban` programs it runs, fail2ban's files choose
//! the regexes that decide who is banned, the ledger says what the kernel
//! must hold. Whoever can change one of them, or swap a directory on the
//! way to it, controls root's actions.
//!
//! The rule, like sshd's StrictModes, is checked for every component of
//! the path from `/` down, following symlinks as the kernel would:
//! - every component (directory, symlink target, the object itself) is
//!   owned by root or by the user running banset;
//! - the object itself, and every directory above it, is writable by
//!   neither its group nor every user;
//! - the one exception: a directory above the object may be writable by
//!   everyone if it is sticky and root's (`/tmp`). In a sticky directory
//!   only an entry's owner can rename or remove it, and the entry below it
//!   on the path is root's (or ours), so nobody can swap it. The object
//!   itself is never allowed to be such a directory: the state directory
//!   gets new files (the ledger's journal, the lock) whose names others
//!   could take first.
//!
//! `/dev/null` as the config is accepted: it reads as empty, so there is
//! nothing in it to trust.
//!
//! The daemon at start-up and on reload, and `watch --check`, run this one
//! check (see `daemon::check_inputs`).

use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// What the path must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A regular file; the null device too (it reads as empty).
    File,
    /// A directory.
    Directory,
    /// A program to run: a regular file.
    Program,
    /// Whatever it is (a tree's entries).
    Any,
}

/// Symlinks followed on one path at most, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// Checks `path` (which must exist). The error names the path and the
/// component at fault, says why, and how to fix it; one line.
pub fn check(path: &Path, expect: Expect) -> Result<(), String> {
    let me = current_uid();
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("{}: the current directory: {e}", path.display()))?
            .join(path)
    };
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, &absolute);
    let mut cur = PathBuf::from("/");
    let root = std::fs::symlink_metadata(&cur).map_err(|e| format!("/: {e}"))?;
    check_component(path, &cur, &root, pending.is_empty(), me)?;
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&name);
        let meta = std::fs::symlink_metadata(&next).map_err(|e| {
            if next == absolute {
                format!("{}: {e}", path.display())
            } else {
                format!("{}: {}: {e}", path.display(), next.display())
            }
        })?;
        if meta.file_type().is_symlink() {
            // The link lives in `cur`, already checked: nobody else can
            // change it. Where it points is checked like the rest.
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{}: too many symlinks", path.display()));
            }
            let target = std::fs::read_link(&next)
                .map_err(|e| format!("{}: {}: {e}", path.display(), next.display()))?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
            continue;
        }
        let last = pending.is_empty();
        check_component(path, &next, &meta, last, me)?;
        if last {
            return check_kind(path, &meta, expect);
        }
        cur = next;
    }
    // The path was `/` (or ended in `..`): a directory.
    let meta = std::fs::metadata(&cur).map_err(|e| format!("{}: {e}", path.display()))?;
    check_component(path, &cur, &meta, true, me)?;
    check_kind(path, &meta, expect)
}

/// Checks `dir` and everything under it (at most `limit` entries), each by
/// [`check`]. For configuration trees read in part by name (fail2ban's
/// `jail.d/*.local`, `filter.d/NAME.conf`): every file a reader could pick
/// must be as trustworthy as the ones it picks today.
pub fn check_tree(dir: &Path, limit: usize) -> Result<(), String> {
    check(dir, Expect::Directory)?;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    let mut visited = std::collections::HashSet::new();
    if let Ok(m) = std::fs::metadata(dir) {
        visited.insert((m.dev(), m.ino()));
    }
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", d.display()))?;
            seen += 1;
            if seen > limit {
                return Err(format!(
                    "{}: more than {limit} entries; not a configuration tree",
                    dir.display()
                ));
            }
            let path = entry.path();
            check(&path, Expect::Any)?;
            // Symlinked directories too (a `filter.d` linked to a shared
            // one is read through the link); each directory once, so a link
            // back up the tree is no loop.
            if let Ok(m) = std::fs::metadata(&path) {
                if m.is_dir() && visited.insert((m.dev(), m.ino())) {
                    stack.push(path);
                }
            }
        }
    }
    Ok(())
}

fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let mut names: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => names.push(n.to_os_string()),
            Component::ParentDir => names.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    pending.extend(names.into_iter().rev());
}

fn check_component(
    path: &Path,
    at: &Path,
    meta: &std::fs::Metadata,
    last: bool,
    me: u32,
) -> Result<(), String> {
    let mode = meta.mode() & 0o7777;
    if last && is_null_device(meta) {
        return Ok(());
    }
    // `path: ` alone when the fault is the object itself, else also the
    // component: "config /x/banset.toml: directory /x ...".
    let which = if last {
        String::new()
    } else {
        format!("directory {} ", at.display())
    };
    let fix_target = at.display();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "{}: {which}owned by uid {}, neither root nor banset's user (chown root {fix_target})",
            path.display(),
            meta.uid()
        ));
    }
    if mode & 0o022 == 0 {
        return Ok(());
    }
    if !last && meta.is_dir() && mode & 0o1000 != 0 && meta.uid() == 0 {
        return Ok(());
    }
    let (who, fix) = if mode & 0o002 != 0 {
        ("every user", "o-w")
    } else {
        ("its group", "g-w")
    };
    Err(format!(
        "{}: {which}writable by {who} (mode {mode:o}; chmod {fix} {fix_target})",
        path.display()
    ))
}

fn check_kind(path: &Path, meta: &std::fs::Metadata, expect: Expect) -> Result<(), String> {
    let ok = match expect {
        Expect::File => meta.is_file() || is_null_device(meta),
        Expect::Program => meta.is_file(),
        Expect::Directory => meta.is_dir(),
        Expect::Any => true,
    };
    if ok && expect == Expect::Program && meta.mode() & 0o111 == 0 {
        // It would fail at the first ban, long after the admin looked.
        return Err(format!(
            "{}: not executable (chmod +x {})",
            path.display(),
            path.display()
        ));
    }
    if ok {
        return Ok(());
    }
    let wanted = match expect {
        Expect::File | Expect::Program => "a regular file",
        Expect::Directory => "a directory",
        Expect::Any => unreachable!(),
    };
    Err(format!("{}: not {wanted}", path.display()))
}

/// The null device, by its device number (whatever name it goes by).
fn is_null_device(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device()
        && std::fs::metadata("/dev/null")
            .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

fn current_uid() -> u32 {
    crate::sys::euid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tempdir(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("banset-trust-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(p)
    }
    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_below_sticky_tmp_in_a_private_directory_is_trusted() {
        let d = tempdir("ok");
        let f = d.0.join("banset.toml");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o644);
        check(&f, Expect::File).unwrap();
        check(&d.0, Expect::Directory).unwrap();
        check(Path::new("/dev/null"), Expect::File).unwrap();
        assert_eq!(
            check(Path::new("/dev/null"), Expect::Program).unwrap_err(),
            "/dev/null: not a regular file"
        );
    }

    #[test]
    fn group_writable_files_and_directories_on_the_path_are_refused() {
        let d = tempdir("group");
        let sub = d.0.join("etc");
        std::fs::create_dir(&sub).unwrap();
        let f = sub.join("banset.toml");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o664);
        let e = check(&f, Expect::File).unwrap_err();
        assert_eq!(
            e,
            format!(
                "{}: writable by its group (mode 664; chmod g-w {})",
                f.display(),
                f.display()
            )
        );
        chmod(&f, 0o644);
        chmod(&sub, 0o775);
        let e = check(&f, Expect::File).unwrap_err();
        assert!(
            e.contains(&format!(
                "directory {} writable by its group",
                sub.display()
            )),
            "{e}"
        );
        // A sticky directory of root's is fine above the object, never as it.
        chmod(&sub, 0o1777);
        if current_uid() == 0 {
            check(&f, Expect::File).unwrap();
        }
        let e = check(&sub, Expect::Directory).unwrap_err();
        assert!(e.contains("writable by every user (mode 1777"), "{e}");
    }

    #[test]
    fn a_symlink_is_followed_and_its_target_checked() {
        let d = tempdir("link");
        let open = d.0.join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let real = open.join("real.toml");
        std::fs::write(&real, "").unwrap();
        chmod(&real, 0o644);
        let link = d.0.join("banset.toml");
        std::os::unix::fs::symlink("open/./real.toml", &link).unwrap();
        let e = check(&link, Expect::File).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: directory {}", link.display(), open.display()))
                && e.contains("writable by every user (mode 777; chmod o-w"),
            "{e}"
        );
        chmod(&open, 0o755);
        check(&link, Expect::File).unwrap();
        let e = check(&d.0.join("missing"), Expect::File).unwrap_err();
        assert!(e.contains("missing: No such file"), "{e}");
    }

    #[test]
    fn a_tree_is_checked_through_symlinked_directories_and_bounded() {
        let d = tempdir("tree");
        let shared = d.0.join("shared");
        std::fs::create_dir(&shared).unwrap();
        let filter = shared.join("sshd.conf");
        std::fs::write(&filter, "").unwrap();
        chmod(&filter, 0o666);
        let tree = d.0.join("fail2ban");
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink(&shared, tree.join("filter.d")).unwrap();
        let e = check_tree(&tree, 100).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: ", tree.join("filter.d/sshd.conf").display()))
                && e.contains("writable by every user"),
            "{e}"
        );
        chmod(&filter, 0o644);
        check_tree(&tree, 100).unwrap();
        // A link back up the tree is visited once.
        std::os::unix::fs::symlink(&tree, shared.join("loop")).unwrap();
        check_tree(&tree, 100).unwrap();
        // A tree too big for a configuration is refused, not walked.
        let e = check_tree(&tree, 2).unwrap_err();
        assert!(e.contains("more than 2 entries"), "{e}");
    }

    #[test]
    fn another_users_file_is_refused() {
        if current_uid() != 0 {
            eprintln!("another_users_file_is_refused: skipped: needs root to chown");
            return;
        }
        let d = tempdir("owner");
        let f = d.0.join("on-ban");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        chmod(&f, 0o755);
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = check(&f, Expect::Program).unwrap_err();
        assert_eq!(
            e,
            format!(
                "{}: owned by uid 65534, neither root nor banset's user (chown root {})",
                f.display(),
                f.display()
            )
        );
    }
}
