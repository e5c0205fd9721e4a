//! What the agent tells the server about its machine: cores, clock,
//! memory, disk, OS, kernel, architecture and hostname, as attributes jobs
//! can constrain on (`${attr.kernel.name}`) and as the resources the
//! scheduler hands out.

use orch_model::Resources;
use std::collections::BTreeMap;
use std::path::Path;

/// The machine as fingerprinted at agent start.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub hostname: String,
    pub resources: Resources,
    pub attributes: BTreeMap<String, String>,
}

/// Clock assumed when the kernel does not say (some VMs and containers
/// hide it), so the node still offers CPU.
const FALLBACK_MHZ: u32 = 1000;

/// Reads the machine. Nothing here fails: what cannot be read is left out
/// of the attributes (and the fallback clock is used for CPU).
pub fn machine(data_dir: &Path) -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = u32::try_from(cores).unwrap_or(u32::MAX);
    let mhz = cpu_mhz().unwrap_or(FALLBACK_MHZ);
    let memory_mib = meminfo_kib("MemTotal").map_or(0, |kib| kib / 1024);
    let disk_mib = free_disk_mib(data_dir).unwrap_or(0);
    let hostname = read_trimmed("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());

    let mut attributes = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        attributes.insert(k.to_owned(), v);
    };
    put("kernel.name", std::env::consts::OS.to_owned());
    put("cpu.arch", std::env::consts::ARCH.to_owned());
    put("cpu.numcores", cores.to_string());
    put("cpu.frequency", mhz.to_string());
    put("cpu.totalcompute", (cores.saturating_mul(mhz)).to_string());
    put("memory.totalbytes", (memory_mib * 1024 * 1024).to_string());
    put(
        "unique.storage.bytesfree",
        (disk_mib * 1024 * 1024).to_string(),
    );
    put("unique.hostname", hostname.clone());
    if let Some(v) = read_trimmed("/proc/sys/kernel/osrelease") {
        put("kernel.version", v);
    }
    let os = os_release();
    if let Some(v) = os.get("ID") {
        put("os.name", v.clone());
    }
    if let Some(v) = os.get("VERSION_ID") {
        put("os.version", v.clone());
    }
    Machine {
        hostname,
        resources: Resources::new(cores.saturating_mul(mhz), memory_mib, disk_mib),
        attributes,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// The fastest core's clock: the cpufreq maximum where the kernel exposes
/// it, else the `cpu MHz` of /proc/cpuinfo.
fn cpu_mhz() -> Option<u32> {
    if let Some(khz) = read_trimmed("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        .and_then(|s| s.parse::<u64>().ok())
        && khz >= 1000
    {
        return u32::try_from(khz / 1000).ok();
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .fold(None, |max: Option<f64>, v| {
            Some(max.map_or(v, |m| m.max(v)))
        })
        .filter(|v| *v >= 1.0)
        .map(|v| v as u32)
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

fn free_disk_mib(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize) / (1024 * 1024))
}

fn os_release() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_cores_memory_and_a_kernel() {
        let m = machine(Path::new("/"));
        assert!(m.resources.cpu > 0);
        assert!(m.resources.memory > 0);
        assert_eq!(m.attributes["kernel.name"], std::env::consts::OS);
        assert!(m.attributes.contains_key("kernel.version"));
        assert!(!m.hostname.is_empty());
    }
}
