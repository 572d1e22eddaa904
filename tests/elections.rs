//! Elections behind the pre-vote (`src/node/candidacy.rs`): a node that cannot reach a
//! quorum runs pre-vote rounds and loses them, never raising the term (so it cannot depose a
//! leader when it comes back), and stops naming the silent leader; the survivors of a dead
//! leader win a pre-vote and elect one of them.

mod common;

use std::time::Duration;

use common::{wait_until, Cluster};
use rampart::node::metrics::PreVoteLabels;
use rampart::node::Node;

fn pre_votes(node: &Node, outcome: &'static str) -> u64 {
    node.metrics
        .pre_votes
        .get_or_create(&PreVoteLabels { outcome })
        .get()
}

fn term(node: &Node) -> u64 {
    node.raft.metrics().borrow().current_term
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_a_quorum_never_raises_the_term() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let survivor = cluster.follower(leader);
    let node = cluster.nodes[survivor].node.clone();
    let before = term(&node);
    assert_eq!(node.leader_id(), Some(leader));
    let mut others: Vec<usize> = (0..3).filter(|i| *i != survivor).collect();
    others.sort_unstable_by(|a, b| b.cmp(a));
    for i in others {
        cluster.nodes.remove(i).stop().await.expect("stop");
    }
    // Three lost rounds: the survivor noticed the silence, asked, and was refused each time.
    let lost_before = pre_votes(&node, "lost");
    wait_until(
        Duration::from_secs(20),
        "three lost pre-vote rounds",
        || {
            let node = node.clone();
            async move { (pre_votes(&node, "lost") >= lost_before + 3).then_some(()) }
        },
    )
    .await;
    assert_eq!(term(&node), before, "a lost pre-vote changes no term");
    assert_eq!(
        pre_votes(&node, "won"),
        0,
        "the survivor never campaigned: {before}"
    );
    assert_eq!(
        node.leader_id(),
        None,
        "a leader silent for the lease is not named"
    );
    let why = node.ready().expect_err("not ready without a leader");
    assert!(why.contains("no leader"), "{why}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_survivors_of_a_dead_leader_win_a_pre_vote_and_elect() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_leader().await;
    let at = cluster.index_of(leader);
    let before = term(&cluster.nodes[at].node);
    cluster.nodes.remove(at).stop().await.expect("stop");
    let next = wait_until(Duration::from_secs(20), "another leader", || {
        let nodes: Vec<_> = cluster.nodes.iter().map(|n| n.node.clone()).collect();
        async move {
            let named: Vec<_> = nodes.iter().map(|n| n.leader_id()).collect();
            match named[0] {
                Some(l) if l != leader && named.iter().all(|n| *n == Some(l)) => Some(l),
                _ => None,
            }
        }
    })
    .await;
    let winner = cluster
        .nodes
        .iter()
        .find(|n| n.node.id == next)
        .expect("new leader")
        .node
        .clone();
    assert!(term(&winner) > before, "a new term");
    assert!(
        pre_votes(&winner, "won") >= 1,
        "the new leader campaigned after winning a pre-vote"
    );
    cluster.stop().await;
}
