//! Leader election through a `coordination.k8s.io/v1` Lease, so that a second replica waits
//! instead of building twice. The holder renews every `renew_every`; another replica takes the
//! Lease only once it has seen it unchanged for its whole duration, by its own clock (as
//! client-go does: the holder's `renewTime` is never compared with another machine's clock).
//! Writes carry the Lease's `resourceVersion`, so of two replicas racing for it exactly one
//! wins.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    pub duration: Duration,
    pub renew_every: Duration,
    /// The Lease's last `(holder, renewTime)` seen, and when it was first seen.
    seen: Mutex<Option<(String, Instant)>>,
}

/// Whether `me` may take or keep `lease`, seen unchanged for `unchanged_for`.
pub fn may_hold(lease: &Lease, me: &str, unchanged_for: Duration) -> bool {
    let Some(spec) = &lease.spec else {
        return true;
    };
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == me => true,
        Some(_) => {
            let seconds = spec.lease_duration_seconds.unwrap_or(15).max(1) as u64;
            unchanged_for > Duration::from_secs(seconds)
        }
    }
}

impl LeaseLock {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            seen: Mutex::new(None),
        }
    }

    /// Takes or renews the Lease; `false` when another replica holds it (or won a race).
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: kube::api::ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, None)),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };
        if !may_hold(&lease, &self.identity, self.unchanged_for(&lease)) {
            return Ok(false);
        }
        lease.spec = Some(self.spec(now, lease.spec.as_ref()));
        conflict_is_false(
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
    }

    /// Gives the Lease up (on shutdown), so another replica takes over at once.
    pub async fn release(&self) -> Result<(), kube::Error> {
        if let Some(mut lease) = self.api.get_opt(&self.name).await?
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            conflict_is_false(
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await,
            )?;
        }
        Ok(())
    }

    /// How long this replica has seen the Lease's holder and renewal unchanged.
    fn unchanged_for(&self, lease: &Lease) -> Duration {
        let spec = lease.spec.clone().unwrap_or_default();
        let record = format!(
            "{:?} {:?}",
            spec.holder_identity,
            spec.renew_time.map(|t| t.0.to_string())
        );
        let mut seen = self.seen.lock().expect("not poisoned");
        match &*seen {
            Some((last, since)) if *last == record => since.elapsed(),
            _ => {
                *seen = Some((record, Instant::now()));
                Duration::ZERO
            }
        }
    }

    fn spec(&self, now: Timestamp, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let ours = previous
            .and_then(|p| p.holder_identity.as_deref())
            .is_some_and(|h| h == self.identity);
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs() as i32),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }
}

fn conflict_is_false(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>) -> Lease {
        Lease {
            metadata: Default::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(15),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_live_lease_of_another_replica_is_left_alone() {
        let secs = Duration::from_secs;
        assert!(!may_hold(&lease(Some("b")), "a", secs(3)));
        assert!(
            may_hold(&lease(Some("b")), "a", secs(16)),
            "unchanged too long"
        );
        assert!(may_hold(&lease(Some("a")), "a", secs(0)), "ours");
        assert!(may_hold(&lease(None), "a", secs(0)), "released");
    }
}
