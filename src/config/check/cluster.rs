//! `[cluster]`: how many controllers carry the control plane. MicroK8s' datastore (dqlite) keeps
//! three voters once three full nodes have joined and stays available while a majority of them
//! is: 1 (no redundancy), 3 (one may be lost) or 5 (two may be); an even count adds a machine
//! without adding a loss the cluster survives.

use super::Checker;
use crate::config::{ClusterSettings, pipeline};

pub(super) fn check(c: &mut Checker, raw: pipeline::Cluster) -> Option<ClusterSettings> {
    let controllers = c.check(
        "cluster.controllers",
        match raw.controllers {
            n @ (1 | 3 | 5) => Ok(n),
            n => Err(format!(
                "{n} is not a controller count Jeeves builds: 1, 3 or 5 (a majority of the datastore's voters must stay up: 3 survive the loss of one, 5 of two)"
            )),
        },
    );
    Some(ClusterSettings {
        controllers: controllers?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_three_or_five_controllers() {
        for ok in [1, 3, 5] {
            let mut c = Checker::for_test();
            let got = check(&mut c, pipeline::Cluster { controllers: ok });
            assert_eq!(got.map(|s| s.controllers), Some(ok));
            assert!(c.keys().is_empty());
        }
        for bad in [0, 2, 4, 6, 7] {
            let mut c = Checker::for_test();
            assert!(check(&mut c, pipeline::Cluster { controllers: bad }).is_none());
            assert_eq!(c.keys(), ["cluster.controllers"], "{bad}");
        }
    }
}
