//! `orch node status`: the machines, and what each holds.

use super::client::{AddressArgs, Reply, routes};
use super::format::{fraction, held, now_ms, plural, pretty_json, short};
use super::job::alloc_table;
use super::table::{Table, key_values};
use anyhow::Result;
use orch_model::{Allocation, Eligibility, Node};
use orch_wire::{DrainRequest, EligibilityRequest, NodeUpdated};
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum NodeCommand {
    /// List nodes, or show one node's attributes, resources, drivers and
    /// allocations.
    Status(StatusArgs),
    /// Start or end a node's drain: a draining node takes no new
    /// allocations, and what runs there is moved to other nodes.
    Drain(DrainArgs),
    /// Mark a node eligible or ineligible for new allocations; what runs
    /// there stays.
    Eligibility(EligibilityArgs),
}

impl NodeCommand {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Self::Status(args) => args.run(),
            Self::Drain(args) => args.run(),
            Self::Eligibility(args) => args.run(),
        }
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// A node id, or a unique prefix of at least 4 characters; without
    /// it, every node.
    pub id: Option<String>,
    /// Print the server's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl StatusArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let Some(id) = self.id else {
            let nodes: Reply<Vec<Node>> = client.get(&routes::NODES, &[], &[])?;
            if self.json {
                println!("{}", pretty_json(&nodes.text));
                return Ok(ExitCode::SUCCESS);
            }
            let allocs: Reply<Vec<Allocation>> = client.get(&routes::ALLOCATIONS, &[], &[])?;
            print!("{}", node_list(&nodes.body, &allocs.body));
            return Ok(ExitCode::SUCCESS);
        };
        let node: Reply<Node> = client.get(&routes::NODE, &[&id], &[])?;
        if self.json {
            println!("{}", pretty_json(&node.text));
            return Ok(ExitCode::SUCCESS);
        }
        // The full id: the one given may be a prefix.
        let allocs: Reply<Vec<Allocation>> =
            client.get(&routes::NODE_ALLOCATIONS, &[&node.body.id], &[])?;
        print!("{}", node_detail(&node.body, &allocs.body, now_ms()));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct DrainArgs {
    /// A node id, or a unique prefix of at least 4 characters.
    pub id: String,
    #[command(flatten)]
    pub switch: Switch,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl DrainArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        // The full id and the name, for what is printed: the one given may
        // be a prefix.
        let node: Reply<Node> = client.get(&routes::NODE, &[&self.id], &[])?;
        let enable = self.switch.enable;
        let updated: Reply<NodeUpdated> = client.post(
            &routes::NODE_DRAIN,
            &[&node.body.id],
            &DrainRequest { enable },
        )?;
        print!("{}", drain_done(&node.body, enable, &updated.body.eval_ids));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args)]
pub struct EligibilityArgs {
    /// A node id, or a unique prefix of at least 4 characters.
    pub id: String,
    #[command(flatten)]
    pub switch: Switch,
    #[command(flatten)]
    pub addr: AddressArgs,
}

impl EligibilityArgs {
    pub fn run(self) -> Result<ExitCode> {
        let client = self.addr.client()?;
        let node: Reply<Node> = client.get(&routes::NODE, &[&self.id], &[])?;
        let eligible = self.switch.enable;
        let updated: Reply<NodeUpdated> = client.post(
            &routes::NODE_ELIGIBILITY,
            &[&node.body.id],
            &EligibilityRequest { eligible },
        )?;
        print!(
            "{}",
            eligibility_done(&node.body, eligible, &updated.body.eval_ids)
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// `--enable` or `--disable`, exactly one.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct Switch {
    /// Turn it on.
    #[arg(long)]
    enable: bool,
    /// Turn it off.
    #[arg(long)]
    disable: bool,
}

/// `Node "a1b2c3d4" (box-1)`.
fn node_label(node: &Node) -> String {
    format!("Node {:?} ({})", short(&node.id), node.name)
}

/// The evaluations a change created, one line, or nothing.
fn evals_line(what: &str, eval_ids: &[String]) -> String {
    if eval_ids.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = eval_ids.iter().map(|e| short(e)).collect();
    format!(
        "{} {what}: {}\n",
        plural(eval_ids.len() as u64, "evaluation", "evaluations"),
        ids.join(", ")
    )
}

/// What `orch node drain` prints.
pub fn drain_done(node: &Node, enabled: bool, eval_ids: &[String]) -> String {
    if !enabled {
        return format!(
            "{} drain disabled; it is eligible for new allocations again\n{}",
            node_label(node),
            evals_line("created for its system jobs", eval_ids)
        );
    }
    let mut out = format!(
        "{} drain enabled; it takes no new allocations\n",
        node_label(node)
    );
    if eval_ids.is_empty() {
        out.push_str("No allocations run there: nothing to move\n");
    } else {
        out.push_str(&evals_line("created to move its allocations", eval_ids));
    }
    out
}

/// What `orch node eligibility` prints.
pub fn eligibility_done(node: &Node, eligible: bool, eval_ids: &[String]) -> String {
    let mut out = if eligible {
        format!("{} is eligible for new allocations\n", node_label(node))
    } else {
        format!(
            "{} is ineligible: it takes no new allocations, and what runs there stays\n",
            node_label(node)
        )
    };
    if eligible && node.drain {
        let _ = writeln!(
            out,
            "It is still draining, so it takes nothing new yet: `orch node drain {} --disable` ends the drain",
            short(&node.id)
        );
    }
    out.push_str(&evals_line("created for its system jobs", eval_ids));
    out
}

fn eligibility(e: Eligibility) -> &'static str {
    match e {
        Eligibility::Eligible => "eligible",
        Eligibility::Ineligible => "ineligible",
    }
}

/// `orch node status`: one line per node; ALLOCS counts the allocations
/// that hold resources there.
pub fn node_list(nodes: &[Node], allocs: &[Allocation]) -> String {
    if nodes.is_empty() {
        return "No nodes registered\n".to_owned();
    }
    let mut t = Table::new([
        "ID",
        "NAME",
        "DC",
        "CLASS",
        "DRAIN",
        "ELIGIBILITY",
        "STATUS",
        "ALLOCS",
    ])
    .right(&[7]);
    for n in nodes {
        let count = allocs
            .iter()
            .filter(|a| a.node_id == n.id && a.holds_resources())
            .count();
        t.row([
            short(&n.id).to_owned(),
            n.name.clone(),
            n.datacenter.clone(),
            if n.node_class.is_empty() {
                "<none>".to_owned()
            } else {
                n.node_class.clone()
            },
            n.drain.to_string(),
            eligibility(n.eligibility).to_owned(),
            n.status.as_str().to_owned(),
            count.to_string(),
        ]);
    }
    t.render()
}

/// `orch node status ID`.
pub fn node_detail(node: &Node, allocs: &[Allocation], now_ms: u64) -> String {
    let status = if node.status_description.is_empty() {
        node.status.as_str().to_owned()
    } else {
        format!("{} ({})", node.status.as_str(), node.status_description)
    };
    let mut out = key_values(&[
        ("ID", node.id.clone()),
        ("Name", node.name.clone()),
        ("Datacenter", node.datacenter.clone()),
        ("Class", node.node_class.clone()),
        ("Drain", node.drain.to_string()),
        ("Eligibility", eligibility(node.eligibility).to_owned()),
        ("Status", status),
    ]);

    let total = node.allocatable();
    let used = held(allocs);
    out.push_str("\nAllocated Resources\n");
    let mut t = Table::new(["RESOURCE", "ALLOCATED / ALLOCATABLE", "RESERVED", "TOTAL"]);
    t.row([
        "cpu".to_owned(),
        fraction(u64::from(used.cpu), u64::from(total.cpu), "MHz"),
        format!("{} MHz", node.reserved.cpu),
        format!("{} MHz", node.resources.cpu),
    ]);
    t.row([
        "memory".to_owned(),
        fraction(used.memory, total.memory, "MiB"),
        format!("{} MiB", node.reserved.memory),
        format!("{} MiB", node.resources.memory),
    ]);
    t.row([
        "disk".to_owned(),
        fraction(used.disk, total.disk, "MiB"),
        format!("{} MiB", node.reserved.disk),
        format!("{} MiB", node.resources.disk),
    ]);
    out.push_str(&t.render());

    out.push_str("\nDrivers\n");
    if node.drivers.is_empty() {
        out.push_str("No drivers detected\n");
    } else {
        let mut t = Table::new(["DRIVER", "DETECTED", "HEALTHY", "DESCRIPTION"]);
        for (name, d) in &node.drivers {
            t.row([
                name.clone(),
                d.detected.to_string(),
                d.healthy.to_string(),
                d.health_description.clone(),
            ]);
        }
        out.push_str(&t.render());
    }

    out.push_str("\nAttributes\n");
    if node.attributes.is_empty() && node.meta.is_empty() {
        out.push_str("No attributes\n");
    } else {
        let pairs: Vec<(String, &String)> = node
            .attributes
            .iter()
            .map(|(k, v)| (format!("attr.{k}"), v))
            .chain(node.meta.iter().map(|(k, v)| (format!("meta.{k}"), v)))
            .collect();
        out.push_str(&key_values(&pairs));
    }

    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        out.push_str(&alloc_table(allocs, now_ms));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::assert_snapshot;
    use crate::job::fixtures::*;
    use orch_model::{ClientStatus, NodeStatus};

    const N1: &str = "n1a2b3c4-0000-4000-8000-000000000001";
    const N2: &str = "n2a2b3c4-0000-4000-8000-000000000002";

    #[test]
    fn node_status_list_and_detail() {
        let mut n2 = node(N2, "box-2", "cloud");
        n2.drain = true;
        n2.eligibility = Eligibility::Ineligible;
        n2.status = NodeStatus::Down;
        let nodes = vec![node(N1, "box-1", "home"), n2];
        let allocs = vec![
            alloc(0, N1, ClientStatus::Running),
            alloc(1, N1, ClientStatus::Pending),
            alloc(2, N1, ClientStatus::Complete),
            alloc(3, N2, ClientStatus::Lost),
        ];
        assert_snapshot("cli-node-status-list", &node_list(&nodes, &allocs));
        let on_n1: Vec<Allocation> = allocs.into_iter().filter(|a| a.node_id == N1).collect();
        assert_snapshot(
            "cli-node-status-detail",
            &node_detail(&nodes[0], &on_n1, NOW),
        );
    }

    #[test]
    fn what_drain_and_eligibility_print() {
        let mut n = node(N1, "box-1", "home");
        let evals = vec![
            "e1e1e1e1-0000-4000-8000-000000000001".to_owned(),
            "e2e2e2e2-0000-4000-8000-000000000002".to_owned(),
        ];
        let mut text = String::new();
        for out in [
            drain_done(&n, true, &evals),
            drain_done(&n, true, &[]),
            drain_done(&n, false, &evals[..1]),
            drain_done(&n, false, &[]),
            eligibility_done(&n, false, &[]),
            eligibility_done(&n, true, &evals[..1]),
        ] {
            text.push_str(&out);
            text.push_str("--\n");
        }
        n.drain = true;
        text.push_str(&eligibility_done(&n, true, &[]));
        assert_snapshot("cli-node-drain", &text);
    }
}
