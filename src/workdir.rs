//! A run's work directory, `CACHE/work/run-*`, where its PEXs and tarballs are made. Each holds
//! an owner file its run keeps locked (`flock`, through std's `File::try_lock`) for as long as
//! it lives; the kernel lets go of the lock however the run ends, `kill -9` included. So a
//! directory whose lock can be taken has no live owner, and the next run removes it: killed
//! runs no longer pile up their work (the issue counted 150 MB after 31 kills).

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The owner file in every run directory.
const OWNER: &str = ".owner";

/// How long a directory without an owner file is left alone: one made by a run that has not
/// written its owner file yet (a moment), or by an older hermit-pex that wrote none.
const UNMARKED_GRACE: Duration = Duration::from_secs(3600);

/// This run's work directory: removed, and its lock let go, when dropped.
#[derive(Debug)]
pub struct RunDir {
    dir: tempfile::TempDir,
    _owner: File,
}

impl RunDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Makes a new `run-*` directory under `CACHE/work`, owned by this process for the life of the
/// returned value, and removes every other `run-*` there that no live run owns.
pub fn run_dir(cache: &Path) -> io::Result<RunDir> {
    let work = cache.join("work");
    std::fs::create_dir_all(&work)?;
    let dir = tempfile::Builder::new().prefix("run-").tempdir_in(&work)?;
    let owner = File::create(dir.path().join(OWNER))?;
    // A file system without flock (some network ones) only costs the clean-up: nobody can
    // take a lock there, so nothing is removed.
    if let Err(e) = owner.try_lock() {
        tracing::debug!(dir = %dir.path().display(), error = %e, "cannot lock the run directory");
    }
    for removed in remove_abandoned(&work, dir.path()) {
        tracing::info!(dir = %removed.display(), "removed the work directory of a run that ended");
    }
    Ok(RunDir { dir, _owner: owner })
}

/// Removes each `run-*` directory under `work` (but `keep`) whose owner is gone: its owner
/// file's lock can be taken, or it has no owner file and has not changed for an hour. Returns
/// what it removed; what it cannot tell or cannot remove stays.
pub fn remove_abandoned(work: &Path, keep: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(work) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_run = entry.file_name().to_string_lossy().starts_with("run-")
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_run || path == keep {
            continue;
        }
        let abandoned = match File::open(path.join(OWNER)) {
            // Held while the directory goes, so that no other run's clean-up races this one.
            Ok(owner) => match owner.try_lock() {
                Ok(()) => {
                    remove(&path, &mut removed);
                    continue;
                }
                // Held by its live run, or a file system that cannot tell: kept.
                Err(TryLockError::WouldBlock | TryLockError::Error(_)) => false,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|idle| idle > UNMARKED_GRACE),
            Err(_) => false,
        };
        if abandoned {
            remove(&path, &mut removed);
        }
    }
    removed
}

fn remove(path: &Path, removed: &mut Vec<PathBuf>) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => removed.push(path.to_owned()),
        Err(e) => {
            tracing::debug!(dir = %path.display(), error = %e, "cannot remove an abandoned run directory")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use super::*;

    const CHILD: &str = "HERMIT_PEX_TEST_RUN_DIR_CACHE";

    /// Not a test: the process the tests below start (and kill), holding a run directory.
    #[test]
    #[ignore = "started by the tests below as a child process"]
    fn child_holds_a_run_dir() {
        let Some(cache) = std::env::var_os(CHILD) else {
            return;
        };
        let dir = run_dir(Path::new(&cache)).unwrap();
        println!("RUN_DIR {}", dir.path().display());
        std::thread::sleep(Duration::from_secs(600));
    }

    /// A child process of this test binary that made a run directory and holds it.
    fn child(cache: &Path) -> (std::process::Child, PathBuf) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "workdir::tests::child_holds_a_run_dir",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let dir = out
            .lines()
            .map_while(Result::ok)
            // libtest writes its "test … ..." before it on the same line.
            .find_map(|l| l.split_once("RUN_DIR ").map(|(_, d)| PathBuf::from(d)))
            .expect("the child says its run directory");
        (child, dir)
    }

    #[test]
    fn a_killed_runs_directory_is_removed_by_the_next_and_a_live_one_kept() {
        let cache = tempfile::tempdir().unwrap();
        let (mut killed, dead_dir) = child(cache.path());
        std::fs::write(dead_dir.join("big.pex"), vec![0u8; 1 << 20]).unwrap();
        killed.kill().unwrap(); // SIGKILL: no destructor runs, the directory stays
        killed.wait().unwrap();
        assert!(dead_dir.join("big.pex").exists(), "left behind by the kill");

        let (mut live, live_dir) = child(cache.path());
        let mine = run_dir(cache.path()).unwrap();
        assert!(!dead_dir.exists(), "the killed run's directory is removed");
        assert!(
            live_dir.join(OWNER).exists(),
            "a live run's directory is kept"
        );
        assert!(mine.path().exists());

        // Once that run is killed too, the next run removes its directory and keeps this one's.
        live.kill().unwrap();
        live.wait().unwrap();
        let next = run_dir(cache.path()).unwrap();
        assert!(!live_dir.exists());
        assert!(mine.path().exists(), "this process still holds its own");
        let (mine_path, next_path) = (mine.path().to_owned(), next.path().to_owned());
        drop(mine);
        assert!(!mine_path.exists(), "a run that ends removes its own");
        assert!(next_path.exists());
    }

    #[test]
    fn a_directory_without_an_owner_file_is_removed_only_when_idle() {
        let cache = tempfile::tempdir().unwrap();
        let work = cache.path().join("work");
        let (fresh, old, other) = (
            work.join("run-fresh"),
            work.join("run-old"),
            work.join("keep-me"),
        );
        for d in [&fresh, &old, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for d in [&old, &other] {
            File::open(d).unwrap().set_modified(two_hours_ago).unwrap();
        }
        let _mine = run_dir(cache.path()).unwrap();
        assert!(
            !old.exists(),
            "an old unmarked run directory (an older hermit-pex's)"
        );
        assert!(
            fresh.exists(),
            "one just made may be a run about to write its owner file"
        );
        assert!(other.exists(), "not a run directory");
    }
}
