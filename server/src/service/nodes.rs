//! Nodes: the machines dynos run on (the one engine, or a swarm's nodes)
//! with their state, address, labels and the dynos on each.

use crate::http::{ApiResult, AppState};
use paas_wire::Node;

pub async fn list(state: &AppState) -> ApiResult<Vec<Node>> {
    let runtime = state.scheduler.runtime();
    let nodes = runtime.nodes().await?;
    let dynos = runtime.list_dynos(None).await?;
    let single = nodes.len() == 1 && nodes[0].role == "engine";
    Ok(nodes
        .into_iter()
        .map(|mut n| {
            n.dynos = dynos
                .iter()
                .filter(|d| d.running && (single || d.node.as_deref() == Some(n.hostname.as_str())))
                .map(|d| format!("{} {}", d.app, d.name()))
                .collect();
            n.dynos.sort();
            n
        })
        .collect())
}
