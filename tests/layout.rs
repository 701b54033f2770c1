//! The repository's own layout: what `hermit-pex sync` writes at its root by default is a
//! run's output, ignored by Git, and `hermit/` says what it holds.

mod common;

use std::process::Command;

use clap::Parser;
use hermit_pex::cli::{Cli, Command as Sub};

#[test]
fn what_sync_writes_by_default_is_ignored_and_hermit_says_what_it_holds() {
    let root = common::repo_root();
    let ignored = |path: &str| {
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["check-ignore", "-q", "--no-index", path])
            .status()
            .unwrap()
            .code()
            == Some(0)
    };
    // Where sync writes by default: the manifests and the releases.
    let Sub::Sync(args) = Cli::try_parse_from(["hermit-pex", "sync"]).unwrap().command else {
        panic!("sync")
    };
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(args.hermit_dir, cwd.join("hermit"));
    assert_eq!(args.release.dist, cwd.join("dist"));
    for output in [
        "hermit/cowsay.hcl",
        "dist/releases/cowsay-v6.1/cowsay-linux-amd64.tar.gz",
        "dist/releases/cowsay-v6.1/release.json",
    ] {
        assert!(ignored(output), "{output} is not ignored");
    }
    for source in ["hermit/README.md", "python/cowsay/config.yaml", "README.md"] {
        assert!(!ignored(source), "{source} is ignored");
    }
    let readme = std::fs::read_to_string(root.join("hermit/README.md")).unwrap();
    for says in ["--hermit-dir", "ignored", "file://", "dist/"] {
        assert!(
            readme.contains(says),
            "hermit/README.md does not say {says:?}"
        );
    }
}
