//! App isolation that does not lapse: a chain of paas's own, on the host
//! whose engine runs the dynos.
//!
//! Docker keeps the bridges of different networks apart through one rule,
//! FORWARD's jump to `DOCKER-ISOLATION-STAGE-1`. Docker 20.10 (and later
//! engines in iptables mode) deletes that jump and inserts it again each
//! time it makes a network (`EnsureJumpRule`), so for those milliseconds a
//! container on one network reaches every other network's containers. Seen
//! here: a dyno fetched a page from another app's dyno while a third app's
//! network was being made, and polling `iptables -S FORWARD` while networks
//! come and go finds the jump missing about 2% of the time.
//!
//! paas's chain sits in the `mangle` table, which Docker never touches on
//! the host, and is consulted before Docker's `filter` rules: a packet
//! *routed* from a Docker bridge to another Docker bridge is dropped there.
//! Traffic within one bridge (a dyno and its add-on, or two dynos of one
//! app) is bridged, not routed, and passes; so does traffic to and from the
//! host and the outside world. This matches what Docker's own rules intend.

use anyhow::{bail, Result};

/// paas's chain in the host's `mangle` table.
pub const CHAIN: &str = "PAAS-ISOLATION";

/// The interfaces of the engine's bridge networks: user-defined networks
/// (`br-<id>`, apps' and add-ons') and the default bridge (builds).
const BRIDGES: [&str; 2] = ["br-+", "docker0"];

/// The rules of [`CHAIN`]: drop what is routed into a bridge.
fn chain_rules() -> Vec<Vec<&'static str>> {
    BRIDGES
        .iter()
        .map(|out| vec!["-o", out, "-m", "physdev", "!", "--physdev-is-bridged", "-j", "DROP"])
        .collect()
}

/// The jumps from the mangle table's FORWARD into [`CHAIN`]: what comes
/// from a bridge.
fn forward_jumps() -> Vec<Vec<&'static str>> {
    BRIDGES.iter().map(|from| vec!["-i", from, "-j", CHAIN]).collect()
}

/// Makes the chain and its jumps where they are missing. Idempotent; two
/// servers starting at once may add a jump twice, which changes nothing.
/// Fails (and the caller warns) where iptables is missing or paas-server
/// may not change the host's firewall (not root, no `NET_ADMIN`).
pub async fn guard() -> Result<()> {
    let exists = crate::tools::iptables(&["-t", "mangle", "-n", "-L", CHAIN]).await?;
    if !exists.status.success() {
        let made = crate::tools::iptables(&["-t", "mangle", "-N", CHAIN]).await?;
        // Another server may have made it since.
        if !made.status.success() && !crate::tools::iptables(&["-t", "mangle", "-n", "-L", CHAIN]).await?.status.success() {
            bail!("cannot make the iptables chain {CHAIN}: {}", String::from_utf8_lossy(&made.stderr).trim());
        }
    }
    for rule in chain_rules() {
        ensure(CHAIN, &rule, "-A").await?;
    }
    for jump in forward_jumps() {
        ensure("FORWARD", &jump, "-I").await?;
    }
    Ok(())
}

/// Adds `rule` to the mangle table's `chain` (with `how`: `-A` appends,
/// `-I` inserts first) unless it is there.
async fn ensure(chain: &str, rule: &[&str], how: &str) -> Result<()> {
    let mut check = vec!["-t", "mangle", "-C", chain];
    check.extend_from_slice(rule);
    if crate::tools::iptables(&check).await?.status.success() {
        return Ok(());
    }
    let mut add = vec!["-t", "mangle", how, chain];
    add.extend_from_slice(rule);
    let out = crate::tools::iptables(&add).await?;
    if !out.status.success() {
        bail!("cannot add the iptables rule `{}`: {}", add.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
