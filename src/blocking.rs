//! File- and CPU-heavy work (packing and hashing a PEX of 100–200 MB, unpacking a tarball,
//! copying into a directory store) runs on tokio's blocking pool, never on the async
//! runtime's workers: there it would stall every other build of the process, and stop the
//! reading of pex's pipes. A leaf: it imports nothing of ours.

/// Runs `f` on the blocking pool and waits for it. A panic in `f` is a panic here.
pub async fn run<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels blocking tasks: nothing is left to report to.
        Err(e) => panic!("blocking work cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "current_thread")]
    async fn blocking_work_leaves_the_runtime_free() {
        // On a one-thread runtime a tick can only happen while the work runs elsewhere.
        let ticker = tokio::spawn(async {
            let mut ticks = 0;
            for _ in 0..5 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                ticks += 1;
            }
            ticks
        });
        let v = super::run(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            7
        })
        .await;
        assert_eq!(v, 7);
        assert_eq!(ticker.await.unwrap(), 5);
    }
}
