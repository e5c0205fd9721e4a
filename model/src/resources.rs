//! Resources: what a task asks for and what a node offers.

use serde::{Deserialize, Serialize};
use std::fmt;

/// CPU in MHz, memory and disk in MiB, as Nomad counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub cpu: u32,
    #[serde(default)]
    pub memory: u64,
    #[serde(default)]
    pub disk: u64,
}

/// The dimension a node ran out of, as `orch eval status` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Cpu,
    Memory,
    Disk,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Cpu => "cpu",
            Dimension::Memory => "memory",
            Dimension::Disk => "disk",
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Resources {
    pub const ZERO: Resources = Resources {
        cpu: 0,
        memory: 0,
        disk: 0,
    };

    pub const fn new(cpu: u32, memory: u64, disk: u64) -> Self {
        Self { cpu, memory, disk }
    }

    /// The sum, saturating: resources come from users and agents.
    #[must_use]
    pub fn saturating_add(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_add(other.cpu),
            memory: self.memory.saturating_add(other.memory),
            disk: self.disk.saturating_add(other.disk),
        }
    }

    /// The difference, floored at zero.
    #[must_use]
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_sub(other.cpu),
            memory: self.memory.saturating_sub(other.memory),
            disk: self.disk.saturating_sub(other.disk),
        }
    }

    /// The first dimension in which `ask` does not fit into `self` once
    /// `used` is taken, or `None` when it fits.
    pub fn exhausted(self, used: Resources, ask: Resources) -> Option<Dimension> {
        if used.cpu.saturating_add(ask.cpu) > self.cpu {
            Some(Dimension::Cpu)
        } else if used.memory.saturating_add(ask.memory) > self.memory {
            Some(Dimension::Memory)
        } else if used.disk.saturating_add(ask.disk) > self.disk {
            Some(Dimension::Disk)
        } else {
            None
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Resources::ZERO
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {} MHz, memory {} MiB, disk {} MiB",
            self.cpu, self.memory, self.disk
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_names_the_first_short_dimension() {
        let node = Resources::new(1000, 1024, 10_000);
        let used = Resources::new(500, 512, 0);
        assert_eq!(node.exhausted(used, Resources::new(500, 512, 10_000)), None);
        assert_eq!(
            node.exhausted(used, Resources::new(501, 1, 1)),
            Some(Dimension::Cpu)
        );
        assert_eq!(
            node.exhausted(used, Resources::new(1, 513, 1)),
            Some(Dimension::Memory)
        );
        assert_eq!(
            node.exhausted(used, Resources::new(1, 1, 10_001)),
            Some(Dimension::Disk)
        );
        // Over-committed already (a smaller node re-registered): nothing fits.
        let over = Resources::new(2000, 0, 0);
        assert_eq!(
            node.exhausted(over, Resources::new(0, 0, 0)),
            Some(Dimension::Cpu)
        );
    }
}
