//! Small, panic-free readers of Linux `/proc`: a process's state, parent and group, and the
//! list of pids. Parsing is pure (`parse_stat`) and unit-tested; the readers return `None` when
//! a process vanished or `/proc` is unavailable.

use std::fs;

/// The fields of `/proc/<pid>/stat` the supervisor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process id.
    pub pid: u32,
    /// One-letter state: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: u32,
    /// Start time in clock ticks since boot (field 22), when the line has it.
    pub start_ticks: Option<u64>,
}

impl Stat {
    /// Running, sleeping or stopped: not a zombie, not dead.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses one `/proc/<pid>/stat` line. The command name may hold spaces and parentheses, so
/// the fields are found after the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = line[..open].trim().parse().ok()?;
    let mut rest = line[close + 1..].split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    // Fields 6..=21 (session ... itrealvalue), then starttime.
    let start_ticks = rest.nth(16).and_then(|t| t.parse().ok());
    Some(Stat {
        pid,
        state,
        ppid,
        pgrp,
        start_ticks,
    })
}

/// When `pid` started, in Unix microseconds (from its start ticks and the boot time); `None` if
/// it is gone or `/proc` does not say. Precision: about a second (the boot time is whole seconds).
pub fn start_time_micros(pid: u32) -> Option<u64> {
    let ticks = stat(pid)?.start_ticks?;
    let btime: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // USER_HZ, the unit of /proc's tick fields, is 100 on every Linux ABI.
    Some(btime * 1_000_000 + ticks * 10_000)
}

/// Reads `/proc/<pid>/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.is_alive())
}

/// `/proc/<pid>/cmdline` as one line (arguments joined by spaces, control characters as `?`,
/// cut at `max` characters);
/// `None` if the process is gone or has none (a kernel thread, a zombie).
pub fn cmdline(pid: u32, max: usize) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let line = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    let clean = line.chars().map(|c| if c.is_control() { '?' } else { c });
    (!line.is_empty()).then(|| clean.take(max).collect())
}

/// Every numeric entry of `/proc`.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Stats of every process in group `pgid` (zombies included).
pub fn group_members(pgid: u32) -> Vec<Stat> {
    pids()
        .into_iter()
        .filter_map(stat)
        .filter(|s| s.pgrp == pgid)
        .collect()
}

/// Whether any non-zombie process is in group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    group_members(pgid).iter().any(Stat::is_alive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines() {
        let s = parse_stat("1234 (sleep) S 1 1234 1234 0 -1 4194304 0 0").unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 1234,
                state: 'S',
                ppid: 1,
                pgrp: 1234,
                start_ticks: None,
            }
        );
        let s = parse_stat("77 (a (weird) name) Z 5 70 70").unwrap();
        assert_eq!((s.pid, s.state, s.ppid, s.pgrp), (77, 'Z', 5, 70));
        assert!(!s.is_alive());
        let full = "9 (x) S 1 9 9 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 10";
        assert_eq!(parse_stat(full).unwrap().start_ticks, Some(4242));
        let me = start_time_micros(std::process::id()).expect("our own start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(me <= now + 2_000_000, "{me} vs {now}");
    }

    #[test]
    fn malformed_stat_lines_are_none() {
        for bad in [
            "",
            "12",
            "12 (x",
            "x (y) S 1 2",
            "12 (y) S",
            "12 (y) S a b",
            ") 12 (",
            "12 (y)",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_own_stat() {
        let me = stat(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(is_alive(std::process::id()));
        assert!(pids().contains(&std::process::id()));
        assert!(cmdline(std::process::id(), 4096).is_some_and(|c| !c.is_empty()));
        assert_eq!(
            cmdline(std::process::id(), 3).map(|c| c.chars().count()),
            Some(3)
        );
    }
}
